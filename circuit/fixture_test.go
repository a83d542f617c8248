package circuit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/testutil"
)

// testNet is a client and relays on loopback; the last relay is the exit
// unless said otherwise.
type testNet struct {
	t      testing.TB
	client *Client
	chost  host.Host
	relays []*Relay
	hosts  []host.Host
}

func newHost(t testing.TB, addrs ...string) host.Host {
	t.Helper()
	if len(addrs) == 0 {
		addrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	rm, err := ResourceManager(RelayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]libp2p.Option{libp2p.ListenAddrStrings(addrs...), libp2p.DisableRelay(), libp2p.ResourceManager(rm)}, LinkOptions()...)
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatalf("libp2p host: %v", err)
	}
	return h
}

// loopbackExit is an exit that may connect to 127.0.0.1 (the test servers).
func loopbackExit(t testing.TB) *exitnode.Exit {
	t.Helper()
	rules, err := exitnode.ParseRules([]string{"accept 127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	opts := exitnode.DefaultOptions()
	opts.Policy = exitnode.NewPolicy(rules, nil)
	return exitnode.New(opts)
}

type netOpts struct {
	relays int
	exit   func(i int) ExitDialer // nil: last relay is a loopback exit
	relay  RelayOptions
	addrs  []string
	// strictAddrs: relays may not extend to loopback addresses.
	strictAddrs bool
}

func newTestNet(t testing.TB, o netOpts) *testNet {
	t.Helper()
	if o.relays == 0 {
		o.relays = 3
	}
	n := &testNet{t: t}
	for i := 0; i < o.relays; i++ {
		h := newHost(t, o.addrs...)
		ro := o.relay
		ro.AllowPrivateAddrs = !o.strictAddrs // the test network is on loopback
		switch {
		case o.exit != nil:
			ro.Exit = o.exit(i)
		case i == o.relays-1:
			ro.Exit = loopbackExit(t)
		}
		r, err := NewRelay(h, ro)
		if err != nil {
			t.Fatal(err)
		}
		n.hosts = append(n.hosts, h)
		n.relays = append(n.relays, r)
	}
	n.chost = newHost(t, o.addrs...)
	n.client = NewClient(n.chost, ClientOptions{})
	t.Cleanup(func() {
		_ = n.client.Close()
		_ = n.chost.Close()
		for i, r := range n.relays {
			_ = r.Close()
			_ = n.hosts[i].Close()
		}
	})
	return n
}

func (n *testNet) path(idx ...int) []Hop {
	var p []Hop
	for _, i := range idx {
		p = append(p, n.relays[i].Hop())
	}
	return p
}

func (n *testNet) build(t testing.TB, idx ...int) *Circuit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := n.client.Build(ctx, n.path(idx...))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return c
}

// echoServer echoes every connection on 127.0.0.1 and half-closes after EOF.
func echoServer(t testing.TB) (uint16, func() int) { return testutil.EchoServer(t) }

func randBytes(t testing.TB, n int) []byte { return testutil.RandomBytes(t, n) }

// roundTrip sends data through an echo stream and checks it comes back.
func roundTrip(t testing.TB, s net.Conn, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, want %d (equal=%v)", len(got), len(data), bytes.Equal(got, data))
	}
}

// checkNoLeak waits until no goroutine of circuit's is left (base, the
// count at the start, is what it was before testutil took over).
func checkNoLeak(t testing.TB, base int) {
	t.Helper()
	testutil.CheckNoLeaks(t, "pikcio/circuit.")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
