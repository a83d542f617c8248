package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/pgtest"
)

// TestTwoTISProcessesOnePostgres runs two `tis serve` processes of one TIS
// on one PostgreSQL database: a code asked for through one works through
// the other, two people racing with that code on both servers give one
// enrollment, and the owner of the winning keys renews through either.
func TestTwoTISProcessesOnePostgres(t *testing.T) {
	db := pgtest.Start(t)
	base := t.TempDir()
	tisDir := filepath.Join(base, "tis")
	out := runOnce(t, "tis init", "tis", "init", "--data", tisDir)
	key := strings.TrimSpace(out) // the bare key on standard output
	if key == "" || strings.ContainsAny(key, " \n") {
		t.Fatalf("tis init printed %q, want the bare root key", out)
	}
	var servers []*proc
	var addrs []string
	for i := range 2 {
		addr := freePort(t)
		p := start(t, fmt.Sprintf("tis serve %d", i), "tis", "serve", "--data", tisDir, "--db", db, "--listen", addr, "--demo-codes")
		p.waitLine(t, "TIS serving on ", startTimeout)
		servers, addrs = append(servers, p), append(addrs, addr)
	}
	const email = "ada@demo.invalid"
	args := func(i int, dir string) []string {
		return []string{"enroll", "--tis", addrs[i], "--tis-key", key, "--name", "Ada", "--email", email, "--data", dir}
	}
	runFailing(t, "enroll, no code", "--code", args(0, filepath.Join(base, "first"))...)
	code := mailedCode(t, servers[0], email)

	// Two devices race with the code, one through each server.
	dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
	exits := make([]int, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := runToEnd(t, fmt.Sprintf("enroll %d", i), append(args(i, dirs[i]), "--code", code)...)
			exits[i] = p.cmd.ProcessState.ExitCode()
		}()
	}
	wg.Wait()
	if (exits[0] == 0) == (exits[1] == 0) {
		t.Fatalf("exits %v: want exactly one enrollment", exits)
	}
	winner := 0
	if exits[1] == 0 {
		winner = 1
	}
	// The winner renews through the other server, without a code.
	runOnce(t, "renew", args(1-winner, dirs[winner])...)

	for _, p := range servers {
		if code, took := p.stop(t, syscall.SIGTERM, 12*time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM (%v)", p.name, code, took)
		}
	}
}
