package delayline

import (
	"bytes"
	"crypto/rand"
	"io"
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
