package circuit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/endreason"
)

func TestBytesIntact(t *testing.T) {
	n := newTestNet(t, netOpts{})
	port, _ := echoServer(t)
	sizes := []int{1, 1 << 20, 64 << 20}
	if raceEnabled || testing.Short() {
		sizes[2] = 8 << 20
	}
	for _, hops := range []int{1, 2, 3} {
		idx := []int{0, 1, 2}[3-hops:]
		c := n.build(t, idx...)
		for _, size := range sizes {
			t.Run("", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s, err := c.OpenStream(ctx, "127.0.0.1", port)
				if err != nil {
					t.Fatalf("%d hops: open: %v", hops, err)
				}
				defer s.Close()
				roundTrip(t, s, randBytes(t, size))
			})
		}
		_ = c.Close()
	}
}

func openStream(t testing.TB, c *Circuit, host string, port uint16) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.OpenStream(ctx, host, port)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestHalfClose shows both directions of half-close: the client's
// CloseWrite reaches the server as EOF while the server still sends, and
// the server's CloseWrite reaches the client as EOF while the client still
// sends.
func TestHalfClose(t *testing.T) {
	n := newTestNet(t, netOpts{})
	c := n.build(t, 0, 1, 2)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	type result struct {
		got []byte
		err error
	}
	served := make(chan result, 2)
	go func() {
		for i := 0; i < 2; i++ {
			conn, err := l.Accept()
			if err != nil {
				served <- result{err: err}
				return
			}
			go func(i int, conn net.Conn) {
				defer conn.Close()
				tc := conn.(*net.TCPConn)
				if i == 0 {
					// Read to EOF first, then answer: needs client half-close.
					got, err := io.ReadAll(tc)
					if err == nil {
						_, err = tc.Write(append([]byte("reply:"), got...))
					}
					_ = tc.CloseWrite()
					served <- result{got: got, err: err}
					return
				}
				// Half-close first, then read what the client still sends.
				_, err := tc.Write([]byte("bye"))
				if err == nil {
					err = tc.CloseWrite()
				}
				got, rerr := io.ReadAll(tc)
				served <- result{got: got, err: errors.Join(err, rerr)}
			}(i, conn)
		}
	}()

	s := openStream(t, c, "127.0.0.1", port)
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := s.(*Stream).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "reply:hello" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if r := <-served; r.err != nil || string(r.got) != "hello" {
		t.Fatalf("server read %q, %v", r.got, r.err)
	}

	s2 := openStream(t, c, "127.0.0.1", port)
	got, err = io.ReadAll(s2)
	if err != nil || string(got) != "bye" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if _, err := s2.Write([]byte("still here")); err != nil {
		t.Fatalf("write after server half-close: %v", err)
	}
	_ = s2.(*Stream).CloseWrite()
	if r := <-served; r.err != nil || string(r.got) != "still here" {
		t.Fatalf("server read %q, %v", r.got, r.err)
	}
}

// TestConcurrentStreams runs 200 streams on one circuit and, at the same
// time, traffic on a second circuit.
func TestConcurrentStreams(t *testing.T) {
	n := newTestNet(t, netOpts{})
	port, _ := echoServer(t)
	c1 := n.build(t, 0, 1, 2)
	c2 := n.build(t, 0, 1, 2)
	const streams = 200
	size := 64 << 10
	if raceEnabled {
		size = 16 << 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams+1)
	run := func(c *Circuit, size int) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := c.OpenStream(ctx, "127.0.0.1", port)
		if err != nil {
			errs <- err
			return
		}
		defer s.Close()
		data := randBytes(t, size)
		go func() {
			_, _ = s.Write(data)
			_ = s.(*Stream).CloseWrite()
		}()
		got, err := io.ReadAll(s)
		if err != nil {
			errs <- err
			return
		}
		if !bytes.Equal(got, data) {
			errs <- fmt.Errorf("stream %d: %d bytes back of %d", s.(*Stream).ID(), len(got), len(data))
		}
	}
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go run(c1, size)
	}
	wg.Add(1)
	go run(c2, 8<<20)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := c1.Stats(); st.StreamsOpened != streams {
		t.Errorf("circuit 1 opened %d streams, want %d", st.StreamsOpened, streams)
	}
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestExitErrors checks that each failure at the exit reaches the client
// as its own error.
func TestExitErrors(t *testing.T) {
	rules, err := exitnode.ParseRules([]string{"accept 127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNet(t, netOpts{exit: func(i int) ExitDialer {
		if i != 2 {
			return nil
		}
		o := exitnode.DefaultOptions()
		o.Policy = exitnode.NewPolicy(rules, nil)
		o.Resolver = fakeResolver{"only-at-exit.test": {netip.MustParseAddr("127.0.0.1")}, "rebind.test": {netip.MustParseAddr("127.0.0.2")}}
		return exitnode.New(o)
	}})
	c := n.build(t, 0, 1, 2)
	echo, _ := echoServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := uint16(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()

	tests := []struct {
		name string
		host string
		port uint16
		want error
	}{
		{"refused port", "127.0.0.1", closed, endreason.ErrRefused},
		{"policy rejects private address", "10.1.2.3", 80, endreason.ErrPolicy},
		{"policy rejects loopback outside the rule", "127.0.0.2", echo, endreason.ErrPolicy},
		{"name resolving to a rejected address", "rebind.test", echo, endreason.ErrPolicy},
		{"name that does not resolve", "nowhere.test", 80, endreason.ErrResolve},
		{"name only the exit resolves", "only-at-exit.test", echo, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := c.OpenStream(ctx, tc.host, tc.port)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				roundTrip(t, s, []byte("through"))
				_ = s.Close()
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, other := range []error{endreason.ErrRefused, endreason.ErrPolicy, endreason.ErrResolve} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("%v also matches %v", err, other)
				}
			}
			if strings.Contains(err.Error(), tc.host) {
				t.Errorf("error text names the destination: %v", err)
			}
		})
	}
	// The circuit survives stream failures.
	s := openStream(t, c, "127.0.0.1", echo)
	roundTrip(t, s, []byte("still works"))
}

// TestNotExit checks that a relay without an exit refuses BEGIN.
func TestNotExit(t *testing.T) {
	n := newTestNet(t, netOpts{})
	c := n.build(t, 0, 1) // relay 1 is not an exit
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.OpenStream(ctx, "127.0.0.1", 80)
	if !errors.Is(err, endreason.ErrNotExit) {
		t.Fatalf("got %v, want ErrNotExit", err)
	}
}

func TestBadPaths(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	h := n.relays[0].Hop()
	nine := make([]Hop, 9)
	for i := range nine {
		nine[i] = Hop{ID: peer.ID(fmt.Sprint(i))}
	}
	self := Hop{ID: n.chost.ID()}
	for name, path := range map[string][]Hop{"empty": nil, "nine hops": nine, "repeated relay": {h, n.relays[1].Hop(), h}, "self": {self}} {
		t.Run(name, func(t *testing.T) {
			_, err := n.client.Build(context.Background(), path)
			if !errors.Is(err, ErrPath) {
				t.Fatalf("got %v, want ErrPath", err)
			}
		})
	}
}

// TestRelayKilled kills the middle relay in the middle of a download: the
// client's read fails within seconds instead of hanging.
func TestRelayKilled(t *testing.T) {
	n := newTestNet(t, netOpts{})
	port := sourceServer(t)
	c := n.build(t, 0, 1, 2)
	s := openStream(t, c, "127.0.0.1", port)
	var hdr [8]byte
	hdr[3] = 1 // 2^32 bytes: more than the test will read
	if _, err := s.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	_ = n.relays[1].Close()
	_ = n.hosts[1].Close()
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Read(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCircuitClosed) {
			t.Errorf("read error %v does not wrap ErrCircuitClosed", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("read still blocked 15 s after the middle relay died")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit not marked done")
	}
}

// TestSlowReader shows that a stream whose reader stops does not stall
// another stream on the same circuit, and that what waits for it is
// bounded by the stream window.
func TestSlowReader(t *testing.T) {
	n := newTestNet(t, netOpts{})
	src := sourceServer(t)
	echo, _ := echoServer(t)
	c := n.build(t, 0, 1, 2)
	slow := openStream(t, c, "127.0.0.1", src)
	var hdr [8]byte
	hdr[4] = 1 // 16 MiB that nobody reads
	if _, err := slow.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	fast := openStream(t, c, "127.0.0.1", echo)
	roundTrip(t, fast, randBytes(t, 4<<20))
	st := slow.(*Stream)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st.mu.Lock()
		buffered, win := st.rcells, st.rwin
		st.mu.Unlock()
		if buffered > win || win > streamWindowInit {
			t.Fatalf("%d cells buffered for a stream that nobody reads, window %d (initial %d)", buffered, win, streamWindowInit)
		}
		if buffered == win || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeadline(t *testing.T) {
	n := newTestNet(t, netOpts{})
	echo, _ := echoServer(t)
	c := n.build(t, 0, 1, 2)
	s := openStream(t, c, "127.0.0.1", echo)
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 10))
	if !isTimeout(err) {
		t.Fatalf("read with passed deadline: %v", err)
	}
	_ = s.SetReadDeadline(time.Time{})
	roundTrip(t, s, []byte("after deadline"))
}

// TestQUIC builds circuits over QUIC links only.
func TestQUIC(t *testing.T) {
	n := newTestNet(t, netOpts{addrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}})
	echo, _ := echoServer(t)
	c := n.build(t, 0, 1, 2)
	s := openStream(t, c, "127.0.0.1", echo)
	roundTrip(t, s, randBytes(t, 1<<20))
	for _, a := range c.Path()[0].Addrs {
		if !strings.Contains(a.String(), "quic") {
			t.Fatalf("first hop address %s is not QUIC", a)
		}
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Run("network", func(t *testing.T) {
		n := newTestNet(t, netOpts{})
		echo, _ := echoServer(t)
		for i := 0; i < 5; i++ {
			c := n.build(t, 0, 1, 2)
			for j := 0; j < 10; j++ {
				s := openStream(t, c, "127.0.0.1", echo)
				roundTrip(t, s, []byte("x"))
				_ = s.Close()
			}
			_ = c.Close()
		}
		// Circuits left open are closed by the client and relays.
		_ = n.build(t, 0, 1, 2)
		_ = n.client.Close()
		for _, r := range n.relays {
			_ = r.Close()
		}
	})
	checkNoLeak(t, base)
}

// TestSetLimits changes a running relay's caps: open streams stay, the new
// cap applies to the next stream; a bandwidth limit slows a download to
// about its rate (checked as a lower bound only).
func TestSetLimits(t *testing.T) {
	n := newTestNet(t, netOpts{})
	echo, _ := echoServer(t)
	src := sourceServer(t)
	c := n.build(t, 0, 1, 2)
	exit := n.relays[2]
	a := openStream(t, c, "127.0.0.1", echo)
	b := openStream(t, c, "127.0.0.1", echo)
	l := exit.Limits()
	l.MaxStreamsPerCircuit = 1
	exit.SetLimits(l)
	c2 := n.build(t, 0, 1, 2)
	openStream(t, c2, "127.0.0.1", echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c2.OpenStream(ctx, "127.0.0.1", echo); !errors.Is(err, endreason.ErrCircuitFull) {
		t.Fatalf("second stream under the new cap: %v", err)
	}
	roundTrip(t, a, []byte("open streams are kept"))
	roundTrip(t, b, []byte("both of them"))

	l.MaxStreamsPerCircuit = 0 // back to the default
	l.BandwidthRate = 1 << 20
	l.BandwidthBurst = 64 << 10
	exit.SetLimits(l)
	s := openStream(t, n.build(t, 0, 1, 2), "127.0.0.1", src)
	const size = 3 << 20
	var hdr [8]byte
	hdr[5] = size >> 16
	start := time.Now()
	if _, err := s.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, s)
	if err != nil || got != size {
		t.Fatalf("download: %d bytes, %v", got, err)
	}
	// 3 MiB of payload is more than 3 MiB of cells; at 1 MiB/s after a
	// 64 KiB burst it cannot take less than about 2.9 s.
	if el := time.Since(start); el < 2500*time.Millisecond {
		t.Fatalf("3 MiB at 1 MiB/s took only %v", el)
	}
}
