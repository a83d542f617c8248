package delayline

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"
)

func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// TestLine: bytes pass intact, no sooner than the delay each way, and no
// faster than the rate cap.
func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		size int
		min  time.Duration
	}{
		{"delay", Options{Delay: 20 * time.Millisecond}, 1 << 10, 40 * time.Millisecond},
		{"rate", Options{Rate: 4 << 20}, 1 << 20, 250*time.Millisecond - 2*rateBurst},
		{"pass-through", Options{}, 4 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(echo(t), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			data := make([]byte, tc.size)
			_, _ = rand.Read(data)
			start := time.Now()
			go func() { _, _ = c.Write(data) }()
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < tc.min {
				t.Fatalf("echo took %v, less than the line allows (%v)", el, tc.min)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("bytes changed on the line")
			}
		})
	}
}

// TestUDPLine: datagrams come back through the line, no sooner than the
// delay each way.
func TestUDPLine(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		b := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDP(b)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDP(b[:n], from)
		}
	}()
	ln, err := ListenUDP(srv.LocalAddr().String(), Options{Delay: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialUDP("udp", nil, ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "ping" {
		t.Fatalf("%q, %v", b[:n], err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("round trip %v through a 15 ms line", el)
	}
}

// sink accepts one connection at a time and hands each to the test.
func sink(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return l.Addr().String(), ch
}

// through opens a line with o to a sink and returns both ends of one
// connection through it, closed at the end of the test.
func through(t *testing.T, o Options) (c, s net.Conn) {
	t.Helper()
	addr, conns := sink(t)
	ln, err := Listen(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s = <-conns
	t.Cleanup(func() { _ = s.Close() })
	return c, s
}

// TestLineDelayHeld: small writes spaced apart each arrive no sooner than
// the one-way delay after they were written, and not held for long after
// it (a chunk must not wait for the next one to leave).
func TestLineDelayHeld(t *testing.T) {
	const delay = 30 * time.Millisecond
	c, s := through(t, Options{Delay: delay})
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	for i := range 10 {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("write %d: got %d, %v", i, b[0], err)
		}
		el := time.Since(start)
		if el < delay {
			t.Fatalf("write %d arrived after %v, sooner than the delay %v", i, el, delay)
		}
		// Generous: a loaded machine wakes late, but a byte held back
		// until something else comes along would never arrive here.
		if el > delay+5*time.Second {
			t.Fatalf("write %d held for %v", i, el)
		}
		time.Sleep(time.Duration(i) * time.Millisecond)
	}
}

// TestLineIntact: 16 MiB each way at once, in writes of every size, come
// through in order and unchanged, and a half-close passes through after
// them, with reads of buffers shared by many chunks and writes of many
// chunks at once.
func TestLineIntact(t *testing.T) {
	for _, o := range []Options{
		{Delay: 5 * time.Millisecond},
		{Delay: 5 * time.Millisecond, Queue: 64 << 10}, // backpressure
		{Delay: time.Millisecond, Rate: 64 << 20},
	} {
		t.Run(fmt.Sprintf("%v-%d-%d", o.Delay, o.Rate, o.Queue), func(t *testing.T) {
			c, s := through(t, o)
			for _, x := range []net.Conn{c, s} {
				_ = x.SetDeadline(time.Now().Add(time.Minute))
			}
			size := 16 << 20
			if testing.Short() || raceEnabled {
				size = 4 << 20
			}
			up, down := make([]byte, size), make([]byte, size)
			_, _ = rand.Read(up)
			_, _ = rand.Read(down)
			send := func(x net.Conn, data []byte, seed uint64) error {
				r := mrand.New(mrand.NewPCG(seed, 1))
				for len(data) > 0 {
					k := min(len(data), 1+r.IntN(100<<10))
					if _, err := x.Write(data[:k]); err != nil {
						return err
					}
					data = data[k:]
				}
				return x.(*net.TCPConn).CloseWrite()
			}
			errs := make(chan error, 2)
			go func() { errs <- send(c, up, 1) }()
			go func() { errs <- send(s, down, 2) }()
			gotUp, errUp := io.ReadAll(s)
			gotDown, errDown := io.ReadAll(c)
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if errUp != nil || errDown != nil {
				t.Fatal(errUp, errDown)
			}
			if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
				t.Fatalf("bytes changed on the line (%d and %d of %d)", len(gotUp), len(gotDown), size)
			}
		})
	}
}
