package circuit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/bench/wan/delayline"
	"github.com/pikcio/pikcio/internal/earlydata"
	"github.com/pikcio/pikcio/internal/endreason"
)

func TestVegas(t *testing.T) {
	const rtt = 50 * time.Millisecond
	// ack sends a window's worth and credits it after d.
	round := func(v *vegas, now time.Time, d time.Duration) (time.Time, error) {
		n := v.room() / circuitIncr * circuitIncr
		v.onSend(n, now)
		now = now.Add(d)
		for i := 0; i < n/circuitIncr; i++ {
			if err := v.onSendme(now); err != nil {
				return now, err
			}
		}
		return now, nil
	}
	t.Run("slow start grows to the bandwidth-delay product", func(t *testing.T) {
		v := newVegas()
		now := time.Unix(0, 0)
		for i := 0; i < 20; i++ {
			var err error
			if now, err = round(&v, now, rtt); err != nil {
				t.Fatal(err)
			}
		}
		if v.cwnd != cwndMax || !v.slowStart {
			t.Fatalf("cwnd %d (slow start %v) after 20 round trips without a queue, want %d", v.cwnd, v.slowStart, cwndMax)
		}
	})
	t.Run("a growing queue ends slow start and shrinks the window", func(t *testing.T) {
		v := newVegas()
		now := time.Unix(0, 0)
		var err error
		if now, err = round(&v, now, rtt); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if now, err = round(&v, now, rtt); err != nil {
				t.Fatal(err)
			}
		}
		grown := v.cwnd
		for i := 0; i < 30; i++ {
			if now, err = round(&v, now, 2*rtt); err != nil { // the path queues
				t.Fatal(err)
			}
		}
		if v.slowStart || v.cwnd >= grown {
			t.Fatalf("cwnd %d (slow start %v) after the round trip doubled, was %d", v.cwnd, v.slowStart, grown)
		}
	})
	t.Run("credit for cells never sent is an error", func(t *testing.T) {
		v := newVegas()
		if err := v.onSendme(time.Now()); !errors.Is(err, ErrMalformed) {
			t.Fatalf("SENDME with nothing in flight: %v", err)
		}
		v.onSend(circuitIncr-1, time.Now())
		if err := v.onSendme(time.Now()); !errors.Is(err, ErrMalformed) {
			t.Fatalf("SENDME for %d cells in flight: %v", circuitIncr-1, err)
		}
	})
}

// patternServer sends, on each connection, the bytes asked for by an
// 8-byte length and an 8-byte seed, from a PCG stream the test regenerates.
func patternServer(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var hdr [16]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				_, _ = io.Copy(c, io.LimitReader(pattern(binary.BigEndian.Uint64(hdr[8:])), int64(binary.BigEndian.Uint64(hdr[:8]))))
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

type patternReader struct {
	r    *rand.PCG
	word [8]byte
	left int // unread bytes at the end of word
}

func pattern(seed uint64) io.Reader { return &patternReader{r: rand.NewPCG(seed, seed)} }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		if p.left == 0 {
			binary.LittleEndian.PutUint64(p.word[:], p.r.Uint64())
			p.left = 8
		}
		b[i] = p.word[8-p.left]
		p.left--
	}
	return len(b), nil
}

// delayedPath returns the hops of n's relays reached through delay lines
// of one-way delay d (rate: bytes/s, 0 none) and the lines.
func delayedPath(t testing.TB, n *testNet, o delayline.Options, idx ...int) []Hop {
	t.Helper()
	var p []Hop
	for _, i := range idx {
		h := n.relays[i].Hop()
		var target string
		for _, a := range h.Addrs {
			if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				target = "127.0.0.1:" + port
			}
		}
		l, err := delayline.Listen(target, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		h.Addrs = []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().Port))}
		p = append(p, h)
	}
	return p
}

func buildPath(t testing.TB, n *testNet, p []Hop) *Circuit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.client.Build(ctx, p)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// download asks the pattern server for size bytes on a new stream of c and
// checks them; it returns how long the body took.
func download(t testing.TB, c *Circuit, port uint16, size int64, seed uint64) (int64, error) {
	s, err := c.OpenStream(context.Background(), "127.0.0.1", port)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:8], uint64(size))
	binary.BigEndian.PutUint64(hdr[8:], seed)
	if _, err := s.Write(hdr[:]); err != nil {
		return 0, err
	}
	want := io.LimitReader(pattern(seed), size)
	got := make([]byte, 64<<10)
	exp := make([]byte, 64<<10)
	var n int64
	for {
		k, err := s.Read(got)
		if k > 0 {
			if _, werr := io.ReadFull(want, exp[:k]); werr != nil {
				return n, fmt.Errorf("%d bytes more than asked", k)
			}
			for i := 0; i < k; i++ {
				if got[i] != exp[i] {
					return n, fmt.Errorf("byte %d differs", n+int64(i))
				}
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) {
			if n != size {
				return n, fmt.Errorf("%d bytes, want %d", n, size)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// TestDelayedPathIntact: 64 MiB (8 MiB under -race) arrive intact through
// three hops whose links all wait 5 ms each way, with congestion control
// moving the window.
func TestDelayedPathIntact(t *testing.T) {
	size := int64(64 << 20)
	if raceEnabled || testing.Short() {
		size = 8 << 20
	}
	n := newTestNet(t, netOpts{})
	port := patternServer(t)
	c := buildPath(t, n, delayedPath(t, n, delayline.Options{Delay: 5 * time.Millisecond}, 0, 1, 2))
	start := time.Now()
	if _, err := download(t, c, port, size, 7); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	c.edge.mu.Lock()
	cwnd := c.edge.cc.cwnd
	c.edge.mu.Unlock()
	t.Logf("%d MiB in %v (%.1f MiB/s); client's upstream cwnd %d", size>>20, el, float64(size)/(1<<20)/el.Seconds(), cwnd)
}

// TestFairShare: two circuits through one capped link each get within 30%
// of half of it.
func TestFairShare(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's slowdown, not the link, would be the bottleneck")
	}
	const rate = 8 << 20
	n := newTestNet(t, netOpts{})
	port := patternServer(t)
	p := delayedPath(t, n, delayline.Options{Delay: 5 * time.Millisecond, Rate: rate}, 0, 1, 2)
	c1, c2 := buildPath(t, n, p), buildPath(t, n, p)
	var got [2]atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	for i, c := range []*Circuit{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.OpenStream(context.Background(), "127.0.0.1", port)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			var hdr [16]byte
			binary.BigEndian.PutUint64(hdr[:8], 1<<40)
			if _, err := s.Write(hdr[:]); err != nil {
				t.Error(err)
				return
			}
			_ = s.SetReadDeadline(stop)
			buf := make([]byte, 64<<10)
			for {
				k, err := s.Read(buf)
				if time.Now().After(stop.Add(-3 * time.Second)) { // count after a second's ramp
					got[i].Add(int64(k))
				}
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	a, b := float64(got[0].Load()), float64(got[1].Load())
	half := (a + b) / 2
	t.Logf("circuit 1: %.1f MiB/s, circuit 2: %.1f MiB/s (link %d MiB/s)", a/3/(1<<20), b/3/(1<<20), rate>>20)
	if a+b < 0.5*rate*3 {
		t.Skipf("the two circuits moved %.1f MiB/s together: the machine, not the %d MiB/s link, is the bottleneck", (a+b)/3/(1<<20), rate>>20)
	}
	for _, v := range []float64{a, b} {
		if v < 0.7*half || v > 1.3*half {
			t.Fatalf("shares %.0f and %.0f bytes: not within 30%% of half", a, b)
		}
	}
}

// TestWindowViolations: a peer that sends past a window or credits what it
// was not sent loses the circuit.
func TestWindowViolations(t *testing.T) {
	echo := silentServer(t)
	for _, tc := range []struct {
		name string
		send func(c *Circuit, s *Stream) error
	}{
		{"stream window overrun", func(c *Circuit, s *Stream) error {
			// The destination does not read, so the exit grants little
			// beyond the first window (what its socket buffers take);
			// 1024 cells (4 MiB) are far past it.
			data := make([]byte, MaxCellData)
			c.edge.mu.Lock()
			c.edge.cc.onSend(1024, time.Now()) // our own circuit window counts them
			c.edge.mu.Unlock()
			for i := 0; i < 1024; i++ {
				if err := c.sendRelay(relayData, s.id, data); err != nil {
					return err
				}
			}
			return nil
		}},
		{"circuit SENDME for cells never sent", func(c *Circuit, _ *Stream) error {
			return c.sendRelay(relaySendme, 0, nil)
		}},
		{"stream SENDMEs past the largest window", func(c *Circuit, s *Stream) error {
			for i := 0; i <= streamWindowMax/streamIncrement; i++ {
				if err := c.sendRelay(relaySendme, s.id, nil); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, netOpts{})
			c := n.build(t, 0, 1, 2)
			s := openStream(t, c, "127.0.0.1", echo).(*Stream)
			// The raw sends bypass our own windows.
			if err := tc.send(c, s); err != nil && !errors.Is(err, ErrCircuitClosed) {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("circuit still open after the violation")
			}
			var de *DestroyedError
			if err := c.Err(); !errors.As(err, &de) || de.Reason != DestroyProtocol {
				t.Fatalf("circuit closed with %v, want DESTROY(protocol)", err)
			}
		})
	}
}

// TestOptimisticData: with earlydata a stream is usable before CONNECTED;
// its data arrives, and a refused connect is the error of the first read.
// The exit holds every connect until the gate opens, so that OpenStream
// returning before CONNECTED is seen however fast loopback answers.
func TestOptimisticData(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	n := newTestNet(t, netOpts{exit: func(i int) ExitDialer {
		if i != 2 {
			return nil
		}
		return gatedExit{loopbackExit(t), gate}
	}})
	echo, _ := echoServer(t)
	c := n.build(t, 0, 1, 2)
	ctx := earlydata.With(context.Background())
	t.Run("data", func(t *testing.T) {
		type opened struct {
			s   net.Conn
			err error
		}
		done := make(chan opened, 1)
		go func() {
			s, err := c.OpenStream(ctx, "127.0.0.1", echo)
			done <- opened{s, err}
		}()
		var s net.Conn
		select {
		case o := <-done:
			if o.err != nil {
				t.Fatal(o.err)
			}
			s = o.s
		case <-time.After(10 * time.Second):
			open()
			t.Fatal("OpenStream waited for CONNECTED")
		}
		defer s.Close()
		select {
		case <-s.(*Stream).connected:
			t.Fatal("CONNECTED before the exit connected")
		default:
		}
		// Written before the exit has connected: it leaves with or
		// right after BEGIN and is delivered once the connect is done.
		msg := []byte("GET / HTTP/1.0\r\n\r\n")
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		open()
		got := make([]byte, len(msg))
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	})
	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := uint16(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
		s, err := c.OpenStream(ctx, "127.0.0.1", closed)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, _ = s.Write([]byte("hello"))
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, endreason.ErrRefused) {
			t.Fatalf("first read of a refused optimistic stream: %v, want ErrRefused", err)
		}
		if _, err := s.Write([]byte("more")); err == nil {
			t.Fatal("write after the refusal succeeded")
		}
	})
}

// TestNonReadingStreams (issue 14, item 4): 256 streams on one circuit to a
// destination that never reads. What the client can push into the exit is
// bounded by the circuit's buffer and the exits' capped socket buffers,
// not a window per stream (160 MiB before), and the circuit still carries
// another stream's data... once the buffer has room.
func TestNonReadingStreams(t *testing.T) {
	const streams = 256
	n := newTestNet(t, netOpts{})
	port := silentServer(t)
	c := n.build(t, 0, 1, 2)
	var pushed atomic.Int64
	var wg sync.WaitGroup
	var conns []net.Conn
	for i := 0; i < streams; i++ {
		s, err := c.OpenStream(context.Background(), "127.0.0.1", port)
		if err != nil {
			// The circuit's buffer is spoken for: refusing more streams
			// is the cap doing its job.
			if i < streams/4 {
				t.Fatalf("stream %d: %v", i, err)
			}
			t.Logf("stream %d refused: %v", i, err)
			break
		}
		conns = append(conns, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				k, err := s.Write(buf)
				pushed.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	// Wait until nothing moves for a while.
	last, still := int64(-1), 0
	for deadline := time.Now().Add(30 * time.Second); still < 5 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		if v := pushed.Load(); v == last {
			still++
		} else {
			last, still = v, 0
		}
	}
	exit := n.relays[2]
	bufferedCells := exit.buffered.inUse()
	total := pushed.Load()
	t.Logf("client pushed %.1f MiB into the exit over %d streams; exit stream windows hold %.1f MiB (circuit buffer %d MiB)",
		float64(total)/(1<<20), len(conns), float64(bufferedCells*CellSize)/(1<<20), circuitBuffer*CellSize>>20)
	// A few windows: the circuit's buffer in the exit's user space, and
	// about as much again in the exit's capped socket buffers and the
	// destination's receive buffers. Before per-circuit budgets and
	// capped send buffers this was 160 MiB (a window per stream).
	limit := int64(3 * circuitBuffer * CellSize)
	if total > limit {
		t.Fatalf("client pushed %d MiB into a non-reading destination, want at most %d MiB", total>>20, limit>>20)
	}
	for _, s := range conns {
		_ = s.Close()
	}
	wg.Wait()
}

// TestRelayCaps: the caps on open exit connections and on buffered stream
// data per relay refuse a BEGIN beyond them, and the circuit stays usable.
func TestRelayCaps(t *testing.T) {
	echo, _ := echoServer(t)
	for _, tc := range []struct {
		name  string
		opts  RelayOptions
		allow int
	}{
		{"open exit connections", RelayOptions{MaxExitStreams: 2}, 2},
		{"buffered bytes", RelayOptions{MaxBufferedBytes: 3 * streamWindowInit * CellSize}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, netOpts{relay: tc.opts})
			c := n.build(t, 0, 1, 2)
			var open []net.Conn
			for i := 0; i < tc.allow; i++ {
				open = append(open, openStream(t, c, "127.0.0.1", echo))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if s, err := c.OpenStream(ctx, "127.0.0.1", echo); err == nil {
				_ = s.Close()
				t.Fatalf("stream %d opened beyond the cap", tc.allow+1)
			}
			_ = open[0].Close()
			// Room again once a stream closes (the exit learns of it
			// asynchronously).
			deadline := time.Now().Add(10 * time.Second)
			for {
				s, err := c.OpenStream(ctx, "127.0.0.1", echo)
				if err == nil {
					roundTrip(t, s, []byte("after the cap"))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no stream after one closed: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// silentServer accepts connections on 127.0.0.1 and never reads from them.
func silentServer(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// TestStreamWindowGrowth: a reader that keeps up grows its stream's window
// to the largest one (a lone stream once stopped at half of it, capping a
// 50 ms-per-link path near 28 MiB/s), a reader that stops does not, and
// new streams still find their initial window.
func TestStreamWindowGrowth(t *testing.T) {
	cell := make([]byte, MaxCellData)
	buf := make([]byte, batchCells*MaxCellData)
	// fill sends s as many cells as it may; read drains them if asked.
	round := func(t *testing.T, e *edge, s *Stream, read bool) {
		t.Helper()
		s.mu.Lock()
		n := s.rcredit
		s.mu.Unlock()
		for i := 0; i < n; i++ {
			if err := e.handle(relayMsg{cmd: relayData, stream: s.id, data: cell}); err != nil {
				t.Fatal(err)
			}
		}
		for read && s.readable() {
			if _, err := s.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	window := func(s *Stream) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.rwin
	}
	// A round is a round trip: the sender sends what it was granted, the
	// reader reads it. A keeping-up reader's window reaches the largest in
	// three (32, 512, 8192, 16384 cells: at 50 ms per link every round trip
	// at a small window is 306 ms of a download at a fraction of its speed;
	// quadrupling took five).
	tests := []struct {
		name   string
		read   bool
		rounds int
		want   int
	}{
		{"a reader that keeps up", true, 3, streamWindowMax},
		{"a reader that keeps up, later", true, 20, streamWindowMax},
		{"a reader that stops", false, 20, streamWindowInit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEdge(&sinkSender{}, 1024, newBudget(1<<20))
			t.Cleanup(func() { e.kill(ErrCircuitClosed); e.wait() })
			s, err := e.acceptStream(1, streamAddr{host: "x", port: 1})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.rounds; i++ {
				round(t, e, s, tt.read)
			}
			if got := window(s); got != tt.want {
				t.Fatalf("window %d cells after %d rounds, want %d", got, tt.rounds, tt.want)
			}
			for id := uint16(2); id < 2+64; id++ {
				if _, err := e.acceptStream(id, streamAddr{host: "x", port: 1}); err != nil {
					t.Fatalf("stream %d beside a grown one: %v", id, err)
				}
			}
		})
	}
}

// TestWindowsFitWideArea: every window on a circuit's path holds what one
// stream needs in flight at 100 MiB/s over a busy 50 ms-per-link path,
// whose average round trip was measured at 0.43 s against an empty path's
// 306 ms (bench/wan): with 32 MiB windows one stream stopped near 64 MiB/s
// there while Vegas, judging by each round's smallest sample, saw no
// queue to back off from.
func TestWindowsFitWideArea(t *testing.T) {
	const need = 100 << 20 * 6 / 10 // 100 MiB/s over 0.6 s, in bytes
	tests := []struct {
		name  string
		bytes int
	}{
		{"congestion window", cwndMax * CellSize},
		{"stream window", streamWindowMax * CellSize},
		{"a circuit's grown stream windows", circuitGrowth * CellSize},
		{"link (yamux) window", linkWindowMax},
	}
	for _, tt := range tests {
		if tt.bytes < need {
			t.Errorf("largest %s %d MiB, want at least %d MiB", tt.name, tt.bytes>>20, need>>20)
		}
	}
}

// gatedExit holds each connect until gate is closed.
type gatedExit struct {
	ExitDialer
	gate chan struct{}
}

func (g gatedExit) DialExit(ctx context.Context, host string, port uint16) (net.Conn, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.ExitDialer.DialExit(ctx, host, port)
}
