package circuit

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	ma "github.com/multiformats/go-multiaddr"
)

// blackhole forwards a link between a client and a relay on loopback until
// cut, then drops everything in both directions without closing anything:
// what a relay that froze, or a host that fell off the network, looks like.
type blackhole struct {
	addr ma.Multiaddr
	cut  atomic.Bool
	stop func()
}

// udpBlackhole forwards UDP datagrams (QUIC) to target.
func udpBlackhole(t *testing.T, target *net.UDPAddr) *blackhole {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp4", nil, target)
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{}
	b.addr, _ = ma.NewMultiaddr("/ip4/127.0.0.1/udp/" + strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port) + "/quic-v1")
	var client atomic.Pointer[net.UDPAddr]
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			client.Store(from)
			if !b.cut.Load() {
				_, _ = up.Write(buf[:n])
			}
		}
	})
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			if c := client.Load(); c != nil && !b.cut.Load() {
				_, _ = pc.WriteToUDP(buf[:n], c)
			}
		}
	})
	b.stop = func() { pc.Close(); up.Close(); wg.Wait() }
	t.Cleanup(b.stop)
	return b
}

// tcpBlackhole forwards TCP connections to target; once cut it stops
// reading and writing but keeps the connections open.
func tcpBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{}
	b.addr, _ = ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			for b.cut.Load() {
				time.Sleep(10 * time.Millisecond)
				mu.Lock()
				closed := conns == nil
				mu.Unlock()
				if closed {
					return
				}
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Go(func() { pipe(u, c) })
			wg.Go(func() { pipe(c, u) })
		}
	})
	b.stop = func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	}
	t.Cleanup(b.stop)
	return b
}

func linkHost(t *testing.T, listen string) host.Host {
	t.Helper()
	rm, err := ResourceManager(RelayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]libp2p.Option{libp2p.ListenAddrStrings(listen), libp2p.DisableRelay(), libp2p.ResourceManager(rm)}, LinkOptions()...)
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestDeadLinkNoticed: a relay that stops answering without closing its
// link (frozen, or gone from the network) is noticed within seconds on
// either transport: the circuit dies and an open stream's Read fails. By
// libp2p's defaults this took 30 s or more.
func TestDeadLinkNoticed(t *testing.T) {
	const bound = 8 * time.Second // linkPingInterval+linkTimeout, with room for -race
	for _, tc := range []struct{ name, listen string }{
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
		{"tcp", "/ip4/127.0.0.1/tcp/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rh := linkHost(t, tc.listen)
			r, err := NewRelay(rh, RelayOptions{Exit: loopbackExit(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			var bh *blackhole
			a := rh.Addrs()[0]
			if tc.name == "quic" {
				ip, _ := a.ValueForProtocol(ma.P_IP4)
				port, _ := a.ValueForProtocol(ma.P_UDP)
				p, _ := strconv.Atoi(port)
				bh = udpBlackhole(t, &net.UDPAddr{IP: net.ParseIP(ip), Port: p})
			} else {
				ip, _ := a.ValueForProtocol(ma.P_IP4)
				port, _ := a.ValueForProtocol(ma.P_TCP)
				bh = tcpBlackhole(t, net.JoinHostPort(ip, port))
			}
			ch := linkHost(t, tc.listen)
			cl := NewClient(ch, ClientOptions{})
			t.Cleanup(func() { cl.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hop := r.Hop()
			hop.Addrs = []ma.Multiaddr{bh.addr}
			c, err := cl.Build(ctx, []Hop{hop})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			port, _ := echoServer(t)
			s, err := c.OpenStream(ctx, "127.0.0.1", port)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(s, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}

			bh.cut.Store(true)
			start := time.Now()
			readErr := make(chan error, 1)
			go func() {
				_, err := s.Read(make([]byte, 1))
				readErr <- err
			}()
			select {
			case <-c.Done():
			case <-time.After(bound):
				t.Fatalf("dead link not noticed within %v", bound)
			}
			t.Logf("%s: dead link noticed after %v", tc.name, time.Since(start).Round(time.Millisecond))
			select {
			case err := <-readErr:
				if err == nil || errors.Is(err, io.EOF) {
					t.Fatalf("stream through a dead link read %v, want an error", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("open stream not failed with the circuit")
			}
		})
	}
}

// TestLinksPreferTCP: a host built with LinkOptions dials a peer that
// listens on both transports over TCP, whose kernel closes it at once when
// the peer's process dies.
func TestLinksPreferTCP(t *testing.T) {
	a := linkHost(t, "/ip4/127.0.0.1/udp/0/quic-v1")
	rm, err := ResourceManager(RelayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	both, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.ResourceManager(rm)}, LinkOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { both.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: both.ID(), Addrs: both.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := a.Network().ConnsToPeer(both.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(ma.P_TCP); err != nil {
		t.Fatalf("link over %s, want TCP", conns[0].RemoteMultiaddr())
	}
	ranked := tcpFirst([]ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
	})
	if ranked[0].Delay != 0 || ranked[1].Delay != tcpFirstDelay {
		t.Fatalf("ranking %v", ranked)
	}
}

// countingConn counts the writes to a conn that carry data: each is a
// system call (and under TLS, one per 16 KiB record). A bare yamux header
// (a keepalive ping or a window update, 12 bytes, which the session may
// send at any moment) is not counted.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	if len(p) > yamuxHeaderLen {
		c.writes.Add(1)
	}
	return c.Conn.Write(p)
}

// yamuxHeaderLen is the size of a yamux frame header.
const yamuxHeaderLen = 12

// TestBatchIsOneFrame: a full batch of cells leaves a link as one yamux
// frame, one write to the connection below. With 16 cells the frame's
// 12-byte header pushed the last 12 bytes into a second frame: a second
// send-loop hand-off, a fifth TLS record and system call per batch.
func TestBatchIsOneFrame(t *testing.T) {
	const size = batchCells * CellSize
	cfg := *lpyamux.DefaultTransport
	yamuxWindows(&cfg)
	a, b := net.Pipe()
	counted := &countingConn{Conn: a}
	client, err := cfg.NewConn(counted, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err := cfg.NewConn(b, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	opened, got := make(chan error, 1), make(chan error, 1)
	go func() {
		r, err := server.AcceptStream()
		if err == nil {
			_ = r.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadFull(r, make([]byte, 1))
		}
		opened <- err
		if err == nil {
			_, err = io.ReadFull(r, make([]byte, size))
		}
		got <- err
	}()
	if _, err := s.Write([]byte{1}); err != nil { // opens the stream
		t.Fatal(err)
	}
	// The pipe is synchronous: once the byte is read, its frame's write
	// is done and counted.
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	before := counted.writes.Load()
	if _, err := s.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := counted.writes.Load() - before; n != 1 {
		t.Errorf("a batch of %d cells took %d writes, want 1", batchCells, n)
	}
}
