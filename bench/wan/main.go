// Command wan measures pikcio over a wide-area network emulated on loopback:
// a client, three relays (separate processes, so that each relay's peak
// memory can be read) and a server, with every link (client-guard,
// guard-middle, middle-exit, exit-server) passing through a delay line
// (package delayline) of a configurable one-way delay and optional rate
// cap. It needs no root. See bench/README.md.
//
//	go run ./bench/wan -delays 0,10ms,50ms -runs 5
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/bench/wan/delayline"
	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/proxy"
)

func main() {
	logrus.SetLevel(logrus.WarnLevel)
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		if err := runRelay(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	delays := flag.String("delays", "0,10ms,50ms", "one-way delays per link, comma-separated")
	flag.IntVar(&cfg.runs, "runs", 5, "runs of each figure (the median is printed)")
	flag.DurationVar(&cfg.bulkTime, "bulk-time", 6*time.Second, "how long a bulk download runs")
	flag.Int64Var(&cfg.rate, "rate", 0, "rate cap of every link in bytes/s (0: none)")
	flag.Int64Var(&cfg.capRate, "cap-rate", 10<<20, "rate of the capped middle-exit link for the capped-link figure (0: skip it)")
	flag.DurationVar(&cfg.capDelay, "cap-delay", 10*time.Millisecond, "one-way delay for the capped-link figure")
	flag.BoolVar(&cfg.quick, "quick", false, "one run, short transfers, no parallel figures (smoke test)")
	flag.BoolVar(&cfg.early, "socks-early", true, "SOCKS replies success before the exit connects (client.socks_early_success)")
	flag.BoolVar(&cfg.quic, "quic", false, "links between client and relays over QUIC instead of TCP+yamux")
	flag.BoolVar(&cfg.service, "service", false, "measure a Matryoshka service through joined circuits instead (service.go)")
	flag.BoolVar(&cfg.ramp, "ramp", false, "print each one-stream bulk run's rate per 250 ms (how it ramps up)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (client, proxy, delay lines, server; not the relays) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if cfg.quick {
		cfg.runs = 1
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "bulk-time" })
		if !set {
			cfg.bulkTime = time.Second
		}
	}
	for _, d := range strings.Split(*delays, ",") {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if d == "0" {
			dur, err = 0, nil
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad delay:", d)
			os.Exit(2)
		}
		cfg.delays = append(cfg.delays, dur)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wan:", err)
		os.Exit(1)
	}
}

type config struct {
	delays   []time.Duration
	runs     int
	bulkTime time.Duration
	rate     int64
	capRate  int64
	capDelay time.Duration
	quick    bool
	quic     bool
	early    bool // SOCKS early success
	service  bool // the -service run
	ramp     bool
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.service {
		return runService(ctx, cfg, out)
	}
	links := "TCP+yamux"
	if cfg.quic {
		links = "QUIC"
	}
	fmt.Fprintf(out, "pikcio wide-area benchmark: 3 hops over %s, every link delayed; medians of %d runs\n", links, cfg.runs)
	fmt.Fprintf(out, "%-8s %10s %12s %12s %14s %14s %-38s %s\n", "delay", "build", "first byte", "bulk MiB/s", "20 str/1 circ", "20 circuits", "relay peak RSS MiB (guard middle exit)", "bulk cpu-s/GiB (bench relays)")
	for _, d := range cfg.delays {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := measure(ctx, cfg, d)
		if err != nil {
			return fmt.Errorf("delay %v: %w", d, err)
		}
		fmt.Fprintf(out, "%-8v %10s %12s %12.1f %14s %14s %-38s %.2f %.2f\n", d, ms(r.build), ms(r.firstByte), r.bulk,
			mibs(r.par1), mibs(r.par20), r.rss, r.cpuBench, r.cpuRelays)
	}
	if cfg.capRate > 0 {
		without, with, err := measureCapped(ctx, cfg)
		if err != nil {
			return fmt.Errorf("capped link: %w", err)
		}
		fmt.Fprintf(out, "capped middle-exit link %.0f MiB/s, %v: first byte on a 2nd circuit %s idle, %s during a bulk download (%.2fx)\n",
			float64(cfg.capRate)/(1<<20), cfg.capDelay, ms(without), ms(with), float64(with)/float64(without))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func mibs(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

type result struct {
	build, firstByte time.Duration
	bulk, par1       float64
	par20            float64
	rss              string
	// CPU seconds per GiB of the one-stream bulk downloads: of this
	// process (client, proxy, delay lines, server) and of the three relay
	// processes together.
	cpuBench, cpuRelays float64
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func measure(ctx context.Context, cfg config, d time.Duration) (result, error) {
	var res result
	n, err := newNetwork(ctx, cfg, d, nil)
	if err != nil {
		return res, err
	}
	defer n.close()
	var builds []time.Duration
	for i := 0; i < cfg.runs; i++ {
		t, err := n.timeBuild(ctx)
		if err != nil {
			return res, err
		}
		builds = append(builds, t)
	}
	res.build = median(builds)
	if err := n.waitReady(ctx, "ready"); err != nil {
		return res, err
	}
	var fbs []time.Duration
	for i := 0; i < cfg.runs+1; i++ {
		t, err := n.firstByte("ready")
		if err != nil {
			return res, err
		}
		if i > 0 { // the first one claims the circuit
			fbs = append(fbs, t)
		}
	}
	res.firstByte = median(fbs)
	var bulks, cpuB, cpuR []float64
	for i := 0; i < cfg.runs; i++ {
		var ramp io.Writer
		if cfg.ramp {
			ramp = os.Stderr
			fmt.Fprintf(ramp, "ramp %v run %d, MiB/s per 250 ms:", d, i)
		}
		b0, r0 := testutil.CPUTime(), n.relayCPU()
		v, err := n.bulkRamp([]string{"bulk"}, cfg.bulkTime, ramp)
		if err != nil {
			return res, err
		}
		gib := v * cfg.bulkTime.Seconds() / 1024
		cpuB = append(cpuB, (testutil.CPUTime()-b0).Seconds()/gib)
		cpuR = append(cpuR, (n.relayCPU()-r0).Seconds()/gib)
		bulks = append(bulks, v)
	}
	res.bulk = median(bulks)
	res.cpuBench, res.cpuRelays = median(cpuB), median(cpuR)
	res.par1, res.par20 = -1, -1
	if !cfg.quick {
		same := make([]string, 20)
		diff := make([]string, 20)
		for i := range same {
			same[i] = "par1"
			diff[i] = "par20-" + strconv.Itoa(i)
		}
		var p1, p20 []float64
		for i := 0; i < max(1, cfg.runs/2); i++ {
			v, err := n.bulk(same, cfg.bulkTime)
			if err != nil {
				return res, err
			}
			p1 = append(p1, v)
			for j := range diff {
				diff[j] = fmt.Sprintf("par20-%d-%d", i, j)
			}
			v, err = n.bulk(diff, cfg.bulkTime)
			if err != nil {
				return res, err
			}
			p20 = append(p20, v)
		}
		res.par1, res.par20 = median(p1), median(p20)
	}
	res.rss = n.peakRSS()
	return res, nil
}

// measureCapped: first byte on one circuit, idle and while another circuit
// downloads in bulk through the capped middle-exit link.
func measureCapped(ctx context.Context, cfg config) (time.Duration, time.Duration, error) {
	n, err := newNetwork(ctx, cfg, cfg.capDelay, map[int]int64{2: cfg.capRate})
	if err != nil {
		return 0, 0, err
	}
	defer n.close()
	if err := n.waitReady(ctx, "probe"); err != nil {
		return 0, 0, err
	}
	probe := func() (time.Duration, error) {
		var v []time.Duration
		for i := 0; i < cfg.runs+1; i++ {
			t, err := n.firstByte("probe")
			if err != nil {
				return 0, err
			}
			if i > 0 {
				v = append(v, t)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return median(v), nil
	}
	idle, err := probe()
	if err != nil {
		return 0, 0, err
	}
	stop := make(chan struct{})
	bulkErr := make(chan error, 1)
	go func() {
		c, err := n.socks("fill")
		if err != nil {
			bulkErr <- err
			return
		}
		defer c.Close()
		if _, err := io.WriteString(c, "0\n"); err != nil {
			bulkErr <- err
			return
		}
		go func() { <-stop; _ = c.Close() }()
		_, _ = io.Copy(io.Discard, c)
		bulkErr <- nil
	}()
	time.Sleep(2 * time.Second) // let the download fill the link
	busy, err := probe()
	close(stop)
	if berr := <-bulkErr; err == nil {
		err = berr
	}
	return idle, busy, err
}

// network is three relay processes, a server, delay lines and a client with
// its SOCKS port.
type network struct {
	relays []*relayProc
	lines  []io.Closer
	path   []circuit.Hop
	server net.Listener
	dest   uint16 // the server's delay line port
	chost  host.Host
	client *circuit.Client
	pool   *proxy.Pool
	srv    *proxy.Server
	socksA string
	wg     sync.WaitGroup
}

type relayProc struct {
	cmd  *exec.Cmd
	info relayInfo
}

type relayInfo struct {
	ID   string
	Port int
	Key  string
}

// newNetwork starts it all; caps gives a rate cap to some links by index
// (0 client-guard, 1 guard-middle, 2 middle-exit, 3 exit-server).
func newNetwork(ctx context.Context, cfg config, delay time.Duration, caps map[int]int64) (_ *network, err error) {
	rate := cfg.rate
	n := &network{}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	opt := func(i int) delayline.Options {
		o := delayline.Options{Delay: delay, Rate: rate}
		if c, ok := caps[i]; ok {
			o.Rate = c
		}
		return o
	}
	if n.relays, n.lines, n.path, err = startRelays(ctx, cfg, 3, 2, opt); err != nil {
		return nil, err
	}
	n.server, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.wg.Add(1)
	go n.serve()
	l, err := delayline.Listen(n.server.Addr().String(), opt(3))
	if err != nil {
		return nil, err
	}
	n.lines = append(n.lines, l)
	n.dest = uint16(l.Addr().Port)

	n.chost, err = newHost(cfg.quic)
	if err != nil {
		return nil, err
	}
	n.client = circuit.NewClient(n.chost, circuit.ClientOptions{})
	n.pool = proxy.NewPool(func(ctx context.Context) (proxy.Circuit, error) {
		return n.client.Build(ctx, n.path)
	}, proxy.PoolOptions{Prebuilt: 1, MaxCircuits: 64})
	n.pool.Start()
	n.srv = proxy.NewServer(n.pool, proxy.ServerOptions{SOCKSEarlySuccess: cfg.early})
	a, err := n.srv.ListenSOCKS("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.socksA = a.String()
	return n, nil
}

func (n *network) close() {
	if n.srv != nil {
		_ = n.srv.Close()
	}
	if n.pool != nil {
		_ = n.pool.Close()
	}
	if n.client != nil {
		_ = n.client.Close()
	}
	if n.chost != nil {
		_ = n.chost.Close()
	}
	if n.server != nil {
		_ = n.server.Close()
	}
	for _, l := range n.lines {
		_ = l.Close()
	}
	stopRelays(n.relays)
	n.wg.Wait()
}

// stopRelays interrupts the relay processes and waits for them.
func stopRelays(relays []*relayProc) {
	for _, p := range relays {
		_ = p.cmd.Process.Signal(os.Interrupt)
		_ = p.cmd.Wait()
	}
}

// startRelays starts count relay processes (relay exit, if not -1, as an
// exit to 127.0.0.1), each behind a delay line of opt(i), and returns
// their hops at the delay lines' addresses. On error, whatever started is
// returned for the caller to close.
func startRelays(ctx context.Context, cfg config, count, exit int, opt func(int) delayline.Options) (relays []*relayProc, lines []io.Closer, path []circuit.Hop, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	for i := 0; i < count; i++ {
		args := []string{"relay"}
		if i == exit {
			args = append(args, "-exit")
		}
		if cfg.quic {
			args = append(args, "-quic")
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return relays, lines, nil, err
		}
		if err := cmd.Start(); err != nil {
			return relays, lines, nil, err
		}
		p := &relayProc{cmd: cmd}
		relays = append(relays, p)
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			return relays, lines, nil, fmt.Errorf("relay %d: %w", i, err)
		}
		if err := json.Unmarshal([]byte(line), &p.info); err != nil {
			return relays, lines, nil, fmt.Errorf("relay %d: %w", i, err)
		}
	}
	for i, p := range relays {
		target := fmt.Sprintf("127.0.0.1:%d", p.info.Port)
		var port int
		if cfg.quic {
			l, err := delayline.ListenUDP(target, opt(i))
			if err != nil {
				return relays, lines, nil, err
			}
			lines = append(lines, l)
			port = l.Addr().Port
		} else {
			l, err := delayline.Listen(target, opt(i))
			if err != nil {
				return relays, lines, nil, err
			}
			lines = append(lines, l)
			port = l.Addr().Port
		}
		id, err := peer.Decode(p.info.ID)
		if err != nil {
			return relays, lines, nil, err
		}
		key, err := hex.DecodeString(p.info.Key)
		if err != nil || len(key) != 32 {
			return relays, lines, nil, fmt.Errorf("relay %d: bad onion key", i)
		}
		addr, err := ma.NewMultiaddr(listenAddr(cfg.quic, port))
		if err != nil {
			return relays, lines, nil, err
		}
		h := circuit.Hop{ID: id, Addrs: []ma.Multiaddr{addr}}
		copy(h.OnionKey[:], key)
		path = append(path, h)
	}
	return relays, lines, path, nil
}

// serve answers the server's connections (serveBytes).
func (n *network) serve() {
	defer n.wg.Done()
	serveBytes(n.server, &n.wg)
}

// serveBytes answers each connection of l until it closes: a line "N\n"
// asks for N bytes (0: without end, until the client closes). wg counts
// the connections' goroutines.
func serveBytes(l net.Listener, wg *sync.WaitGroup) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			want, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if err != nil {
				return
			}
			buf := make([]byte, 64<<10)
			for sent := int64(0); want == 0 || sent < want; {
				k := int64(len(buf))
				if want > 0 {
					k = min(k, want-sent)
				}
				if _, err := c.Write(buf[:k]); err != nil {
					return
				}
				sent += k
			}
		}()
	}
}

func (n *network) timeBuild(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	c, err := n.client.Build(ctx, n.path)
	if err != nil {
		return 0, err
	}
	t := time.Since(start)
	_ = c.Close()
	return t, nil
}

// waitReady waits for a prebuilt circuit; the first dial of user claims it.
func (n *network) waitReady(ctx context.Context, user string) error {
	deadline := time.Now().Add(time.Minute)
	for n.pool.Stats().Clean == 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("no circuit became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// socks opens a SOCKS5 tunnel to the server as user (username/password
// authentication: one isolation group per user), as curl does: it waits for
// each reply before writing on.
func (n *network) socks(user string) (net.Conn, error) {
	c, err := net.Dial("tcp", n.socksA)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Conn, error) { _ = c.Close(); return nil, err }
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write([]byte{5, 1, 2}); err != nil {
		return fail(err)
	}
	var b [10]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[1] != 2 {
		return fail(fmt.Errorf("socks method % x: %v", b[:2], err))
	}
	auth := append([]byte{1, byte(len(user))}, user...)
	auth = append(auth, 1, 'x')
	if _, err := c.Write(auth); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[1] != 0 {
		return fail(fmt.Errorf("socks auth % x: %v", b[:2], err))
	}
	if _, err := c.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, byte(n.dest >> 8), byte(n.dest)}); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(c, b[:]); err != nil || b[1] != 0 {
		return fail(fmt.Errorf("socks reply % x: %v", b, err))
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// firstByte: from the SOCKS connect to the first byte of a 1 KiB answer.
func (n *network) firstByte(user string) (time.Duration, error) {
	start := time.Now()
	c, err := n.socks(user)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "1024\n"); err != nil {
		return 0, err
	}
	return timeAnswer(c, start)
}

// timeAnswer reads a 1 KiB answer from c and returns the time from start
// to its first byte.
func timeAnswer(c net.Conn, start time.Time) (time.Duration, error) {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	t := time.Since(start)
	if k, err := io.Copy(io.Discard, c); err != nil || k != 1023 {
		return 0, fmt.Errorf("answer of %d bytes: %v", k+1, err)
	}
	return t, nil
}

// bulk downloads on one stream per user for d and returns MiB/s in total,
// counted from when every stream is open.
func (n *network) bulk(users []string, d time.Duration) (float64, error) {
	return n.bulkRamp(users, d, nil)
}

// rampStep is the interval of a ramp's samples.
const rampStep = 250 * time.Millisecond

// bulkRamp is bulk that also writes to ramp, when not nil, the rate of each
// rampStep (one line per download).
func (n *network) bulkRamp(users []string, d time.Duration, ramp io.Writer) (float64, error) {
	conns := make([]net.Conn, len(users))
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := n.socks(u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	if firstErr != nil {
		return 0, firstErr
	}
	var total atomic.Int64
	start := time.Now()
	end := start.Add(d)
	if ramp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer fmt.Fprintln(ramp)
			var last int64
			for t := start.Add(rampStep); !t.After(end); t = t.Add(rampStep) {
				time.Sleep(time.Until(t))
				v := total.Load()
				fmt.Fprintf(ramp, " %.0f", float64(v-last)/(1<<20)/rampStep.Seconds())
				last = v
			}
		}()
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := io.WriteString(c, "0\n"); err != nil {
				return
			}
			_ = c.SetReadDeadline(end)
			buf := make([]byte, 256<<10)
			for {
				k, err := c.Read(buf)
				total.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return float64(total.Load()) / (1 << 20) / el, nil
}

// relayCPU is the CPU time (user and system) the relay processes used so
// far (0 for one whose /proc entry cannot be read).
func (n *network) relayCPU() time.Duration {
	var t time.Duration
	for _, p := range n.relays {
		if _, cpu, err := testutil.ProcStat(p.cmd.Process.Pid); err == nil {
			t += cpu
		}
	}
	return t
}

func (n *network) peakRSS() string {
	var s []string
	for _, p := range n.relays {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		v := "?"
		if err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
					kb, _ := strconv.ParseFloat(f[1], 64)
					v = fmt.Sprintf("%.0f", kb/1024)
				}
			}
		}
		s = append(s, v)
	}
	return strings.Join(s, " ")
}

func listenAddr(quic bool, port int) string {
	if quic {
		return fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)
	}
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
}

func newHost(quic bool) (host.Host, error) {
	rm, err := circuit.ResourceManager(circuit.RelayOptions{})
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listenAddr(quic, 0)),
		libp2p.DisableRelay(), libp2p.DisableMetrics(), libp2p.ResourceManager(rm),
	}
	opts = append(opts, circuit.LinkOptions()...)
	return libp2p.New(opts...)
}

// runRelay is the child process: one relay on 127.0.0.1, which prints its
// identity, port and onion key as one JSON line and runs until interrupted.
func runRelay(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	exit := fs.Bool("exit", false, "serve as an exit to 127.0.0.1")
	quic := fs.Bool("quic", false, "listen on QUIC")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := newHost(*quic)
	if err != nil {
		return err
	}
	defer h.Close()
	// The hops are reached through delay lines on loopback: a network on
	// one machine, so the relay may extend to loopback addresses.
	ro := circuit.RelayOptions{AllowPrivateAddrs: true}
	if *exit {
		rules, err := exitnode.ParseRules([]string{"accept 127.0.0.1:*"})
		if err != nil {
			return err
		}
		eo := exitnode.DefaultOptions()
		eo.Policy = exitnode.NewPolicy(rules, nil)
		ro.Exit = exitnode.New(eo)
	}
	r, err := circuit.NewRelay(h, ro)
	if err != nil {
		return err
	}
	defer r.Close()
	port := 0
	for _, a := range h.Addrs() {
		if v, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			port, _ = strconv.Atoi(v)
		}
		if v, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			port, _ = strconv.Atoi(v)
		}
	}
	hop := r.Hop()
	info, _ := json.Marshal(relayInfo{ID: h.ID().String(), Port: port, Key: hex.EncodeToString(hop.OnionKey[:])})
	fmt.Println(string(info))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	return nil
}
