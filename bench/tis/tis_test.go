// Package tisbench measures enrollment into real "pikcio tis serve"
// processes, through the real HTTP path: the request that mails a code
// (--demo-codes: the code goes to the server's log, which the benchmark
// reads), then the request with the code. Two processes share one
// PostgreSQL database (internal/pgtest), or one process serves the
// SQLite default (its tis.db). See bench/README.md and run.sh.
package tisbench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/pikcio/pikcio/internal/pgtest"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/internal/tisfill"
	"github.com/pikcio/pikcio/tis"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// cluster is a TIS served by two processes on one PostgreSQL, or by one
// on its SQLite default.
type cluster struct {
	db       *sql.DB
	postgres bool
	root     ed25519.PublicKey
	urls     []string
	procs    []*os.Process
	codes    *codeLog
	// pgPid is the PostgreSQL server's process (0 if not found).
	pgPid int
	// filled is how many made-up people prefill added so far.
	filled int
}

// buildPikcio builds cmd/pikcio into a temporary directory.
func buildPikcio(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "pikcio")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/pikcio")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The backends a cluster runs on.
const (
	twoPostgres = "postgres"
	oneSQLite   = "sqlite"
)

// startCluster initializes a TIS and serves it from two processes on one
// PostgreSQL, or (oneSQLite) from one process on its default SQLite
// database. The global limit is raised above what is measured; the
// per-address and per-domain limits keep their defaults (each enrollment
// comes from an address of its own, through a trusted proxy, and the
// e-mails spread over many domains).
func startCluster(tb testing.TB, backend string) *cluster {
	tb.Helper()
	bin := buildPikcio(tb)
	dir := filepath.Join(tb.TempDir(), "tis")
	out, err := exec.Command(bin, "tis", "init", "--data", dir).Output()
	if err != nil {
		tb.Fatalf("tis init: %v", err)
	}
	root, err := tis.ParseKey(strings.TrimSpace(string(out)))
	if err != nil {
		tb.Fatalf("tis init printed %q: %v", out, err)
	}
	procs, url := 1, ""
	if backend == twoPostgres {
		procs, url = 2, pgtest.Start(tb)
	}
	c := &cluster{root: root, codes: newCodeLog(procs), postgres: backend == twoPostgres}
	for range procs {
		c.serve(tb, bin, dir, url)
	}
	var db *sql.DB
	if c.postgres {
		db, err = sql.Open("pgx", url)
	} else {
		// The server's own file, written beside it (prefill): SQLite
		// locks it for each writer in turn.
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, tis.DBFile)+"?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	c.db = db
	if u, err := neturl.Parse(url); err == nil && c.postgres {
		c.pgPid = postmaster(u.Port())
	}
	return c
}

var servingRE = regexp.MustCompile(`TIS serving on (http://\S+)`)

// serve starts one "tis serve" process (on the database of url, "" for
// the SQLite default) and waits until it serves.
func (c *cluster) serve(tb testing.TB, bin, dir, url string) {
	tb.Helper()
	args := []string{"tis", "serve", "--data", dir, "--listen", "127.0.0.1:0",
		"--demo-codes", "--trusted-proxy", "127.0.0.1", "--enroll-rate", "100000", "--enroll-burst", "100000"}
	if url != "" {
		args = append(args, "--db", url)
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		c.codes.read(stderr)
	}()
	served := make(chan string, 1)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				served <- m[1]
			}
		}
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { readers.Wait(); cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case u := <-served:
		c.urls = append(c.urls, u)
		c.procs = append(c.procs, cmd.Process)
	case <-time.After(2 * time.Minute):
		tb.Fatal("tis serve did not start")
	}
}

// codeLog collects the codes the servers write to their logs.
type codeLog struct {
	mu    sync.Mutex
	cond  *sync.Cond
	codes map[string]string
	done  int // readers ended
	procs int // readers in all
}

func newCodeLog(procs int) *codeLog {
	l := &codeLog{codes: map[string]string{}, procs: procs}
	l.cond = sync.NewCond(&l.mu)
	return l
}

var codeRE = regexp.MustCompile(`enrollment code for (\S+) is (\d+)`)

func (l *codeLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := codeRE.FindStringSubmatch(sc.Text()); m != nil {
			l.mu.Lock()
			l.codes[m[1]] = m[2]
			l.cond.Broadcast()
			l.mu.Unlock()
		}
	}
	l.mu.Lock()
	l.done++
	l.cond.Broadcast()
	l.mu.Unlock()
}

// code waits for the code mailed to email.
func (l *codeLog) code(ctx context.Context, email string) (string, error) {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if c, ok := l.codes[email]; ok {
			delete(l.codes, email)
			return c, nil
		}
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("code for %s: %w", email, err)
		}
		if l.done == l.procs {
			return "", fmt.Errorf("code for %s: the servers exited", email)
		}
		l.cond.Wait()
	}
}

// prefill adds made-up enrolled people (a person, two keys and two
// serials each) in bulk up to n, and analyzes the tables.
func (c *cluster) prefill(tb testing.TB, n int) {
	tb.Helper()
	if n <= c.filled {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	expires := time.Now().Add(tis.DefaultCertLifetime).Unix()
	queries := tisfill.Queries(c.postgres, c.filled+1, n, expires)
	if c.postgres {
		queries = append(queries, "ANALYZE")
	} else {
		queries = append([]string{"BEGIN IMMEDIATE"}, append(queries, "COMMIT", "ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)")...)
	}
	// One connection: SQLite's BEGIN and temporary table are its own.
	conn, err := c.db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	for _, q := range queries {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			tb.Fatalf("prefill: %s: %v", q, err)
		}
	}
	c.filled = n
}

// xff sends every request as from addr, behind the trusted proxy
// (127.0.0.1): each enrollment comes from an address of its own.
type xff struct {
	base http.RoundTripper
	addr string
}

func (x xff) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", x.addr)
	return x.base.RoundTrip(r)
}

// result is one measurement.
type result struct {
	enrollments int
	elapsed     time.Duration
	median, p99 time.Duration
	// serverCPU is the CPU time of both tis serve processes, dbCPU of
	// PostgreSQL, clientCPU of this process (the clients).
	serverCPU, dbCPU, clientCPU time.Duration
}

var seq atomic.Int64

// enroll enrolls m new people through the two servers, workers at once,
// the requests alternating between the servers.
func (c *cluster) enroll(tb testing.TB, m, workers int) result {
	tb.Helper()
	type node struct {
		key  crypto.PrivKey
		mkey ed25519.PrivateKey
	}
	nodes := make([]node, m)
	for i := range nodes {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		_, mk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		nodes[i] = node{k, mk}
	}
	transports := make([]*http.Transport, len(c.urls))
	for i := range transports {
		transports[i] = &http.Transport{MaxIdleConnsPerHost: workers}
		defer transports[i].CloseIdleConnections()
	}
	lat := make([]time.Duration, m)
	var failed atomic.Int64
	next := make(chan int)
	var wg sync.WaitGroup
	cpu0, db0, self0 := c.serverCPU(), c.dbCPU(), selfCPU()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				n := seq.Add(1)
				s := i % len(c.urls)
				cl := tis.NewClient(c.urls[s], c.root)
				cl.HTTP.Transport = xff{transports[s], fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)}
				cl.Code = c.codes.code
				email := fmt.Sprintf("p%d@d%d.example", n, n%1000)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				t0 := time.Now()
				_, err := cl.Enroll(ctx, nodes[i].key, nodes[i].mkey, "Bench Person", email)
				lat[i] = time.Since(t0)
				cancel()
				if err != nil && failed.Add(1) <= 5 {
					tb.Errorf("enroll %s: %v", email, err)
				}
			}
		}()
	}
	for i := range m {
		next <- i
	}
	close(next)
	wg.Wait()
	r := result{enrollments: m, elapsed: time.Since(start), serverCPU: c.serverCPU() - cpu0, dbCPU: c.dbCPU() - db0, clientCPU: selfCPU() - self0}
	slices.Sort(lat)
	r.median, r.p99 = lat[m/2], lat[m*99/100]
	if f := failed.Load(); f > 0 {
		tb.Fatalf("%d of %d enrollments failed", f, m)
	}
	return r
}

// serverCPU is the CPU time (user and system) of the server processes.
func (c *cluster) serverCPU() time.Duration {
	var total time.Duration
	for _, p := range c.procs {
		_, cpu, _ := testutil.ProcStat(p.Pid)
		total += cpu
	}
	return total
}

// selfCPU is the CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dbCPU is the CPU time of the PostgreSQL server (pid c.pgPid) and its
// processes (the backends of the servers' connections live on).
func (c *cluster) dbCPU() time.Duration {
	if c.pgPid == 0 {
		return 0
	}
	_, total, _ := testutil.ProcStat(c.pgPid)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, cpu, err := testutil.ProcStat(pid); err == nil && ppid == c.pgPid {
			total += cpu
		}
	}
	return total
}

// postmaster finds the PostgreSQL server listening on port.
func postmaster(port string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "/postgres") && slices.Contains(args, "-p") && slices.Contains(args, port) {
			return pid
		}
	}
	return 0
}

// envInts reads a comma-separated list of counts, or def.
func envInts(tb testing.TB, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			tb.Fatalf("%s: %q", name, f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkTwoProcesses enrolls PIKCIO_BENCH_M (2000) people at each N of
// PIKCIO_BENCH_N (10k, 100k, 1M people enrolled before, pre-filled in
// bulk) into two tis serve processes on one PostgreSQL, 16 at once, and
// reports enrollments per second, the median and 99th percentile time of
// one, and the CPU time per enrollment of the servers, of PostgreSQL and
// of the clients (this process), which share the machine's cores.
func BenchmarkTwoProcesses(b *testing.B) { benchEnroll(b, twoPostgres) }

// BenchmarkSQLite is BenchmarkTwoProcesses for one tis serve process on
// its default database (SQLite, tis.db in its directory); the database's
// CPU time is the server's.
func BenchmarkSQLite(b *testing.B) { benchEnroll(b, oneSQLite) }

func benchEnroll(b *testing.B, backend string) {
	sizes := envInts(b, "PIKCIO_BENCH_N", []int{10_000, 100_000, 1_000_000})
	m := envInts(b, "PIKCIO_BENCH_M", []int{2000})[0]
	c := startCluster(b, backend)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			c.prefill(b, n)
			var r result
			for b.Loop() {
				r = c.enroll(b, m, 16)
			}
			b.ReportMetric(float64(r.enrollments)/r.elapsed.Seconds(), "enrollments/s")
			b.ReportMetric(float64(r.median.Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(r.p99.Microseconds())/1000, "ms-p99")
			b.ReportMetric(float64(r.serverCPU.Microseconds())/1000/float64(r.enrollments), "server-cpu-ms/enrollment")
			if c.postgres {
				b.ReportMetric(float64(r.dbCPU.Microseconds())/1000/float64(r.enrollments), "db-cpu-ms/enrollment")
			}
			b.ReportMetric(float64(r.clientCPU.Microseconds())/1000/float64(r.enrollments), "client-cpu-ms/enrollment")
			b.ReportMetric(0, "ns/op")
		})
	}
	if c.postgres && os.Getenv("PIKCIO_BENCH_PGSTATS") != "" {
		c.printStatements(b)
	}
}

// printStatements logs the statements PostgreSQL spent most time on
// (pg_stat_statements, loaded with PIKCIO_PGTEST_OPTS="-c
// shared_preload_libraries=pg_stat_statements").
func (c *cluster) printStatements(tb testing.TB) {
	if _, err := c.db.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		tb.Logf("pg_stat_statements: %v", err)
		return
	}
	rows, err := c.db.Query(`SELECT calls, total_exec_time, total_plan_time, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`)
	if err != nil {
		tb.Logf("pg_stat_statements: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var calls int64
		var exec, plan float64
		var q string
		if err := rows.Scan(&calls, &exec, &plan, &q); err == nil {
			tb.Logf("%8d calls %8.1f ms exec %6.1f ms plan  %s", calls, exec, plan, q)
		}
	}
}

// TestSmoke runs the benchmark's path small, on both backends: a few
// enrollments, each of which must succeed and be in the database once.
func TestSmoke(t *testing.T) {
	for _, backend := range []string{twoPostgres, oneSQLite} {
		t.Run(backend, func(t *testing.T) {
			c := startCluster(t, backend)
			c.prefill(t, 100)
			if r := c.enroll(t, 20, 4); r.enrollments != 20 {
				t.Fatalf("%d enrollments", r.enrollments)
			}
			var n int
			if err := c.db.QueryRow(`SELECT count(*) FROM persons`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 120 {
				t.Fatalf("%d persons, want 120", n)
			}
			if _, err := c.codes.code(canceled(), "nobody@example.org"); !errors.Is(err, context.Canceled) {
				t.Fatalf("code of an e-mail never mailed: %v", err)
			}
		})
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
