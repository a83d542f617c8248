package e2e

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/proxy"
)

// onlyAtExit is a name that only the exit's resolver knows: if the client
// resolved names, it would fail.
const onlyAtExit = "only-at-exit.test"

// network is three relays (the last an exit that may reach 127.0.0.1), a
// client host, a circuit pool and the two proxy front ends.
type network struct {
	relays    []*circuit.Relay
	hops      []circuit.Hop
	client    *circuit.Client
	pool      *proxy.Pool
	server    *proxy.Server
	socks     string
	http      string
	builds    atomic.Int64
	exitBytes func() uint64
}

type exitResolver struct{}

func (exitResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	switch host {
	case onlyAtExit:
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case "localhost":
		return net.DefaultResolver.LookupNetIP(ctx, network, host) // /etc/hosts
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func newHost(tb testing.TB) host.Host {
	tb.Helper()
	// As every pikcio host: the links' security, windows and liveness.
	opts := append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay()}, circuit.LinkOptions()...)
	h, err := libp2p.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func newNetwork(tb testing.TB, popts proxy.PoolOptions) *network {
	tb.Helper()
	n := &network{}
	rules, err := exitnode.ParseRules([]string{"accept 127.0.0.1:*"})
	if err != nil {
		tb.Fatal(err)
	}
	var hops []circuit.Hop
	for i := 0; i < 3; i++ {
		ro := circuit.RelayOptions{AllowPrivateAddrs: true} // on loopback
		if i == 2 {
			o := exitnode.DefaultOptions()
			o.Policy = exitnode.NewPolicy(rules, nil)
			o.Resolver = exitResolver{}
			ro.Exit = exitnode.New(o)
		}
		r, err := circuit.NewRelay(newHost(tb), ro)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = r.Close() })
		n.relays = append(n.relays, r)
		hops = append(hops, r.Hop())
	}
	n.hops = hops
	n.exitBytes = func() uint64 { return n.relays[2].Stats().Bytes }
	n.client = circuit.NewClient(newHost(tb), circuit.ClientOptions{})
	tb.Cleanup(func() { _ = n.client.Close() })
	n.pool = proxy.NewPool(func(ctx context.Context) (proxy.Circuit, error) {
		n.builds.Add(1)
		return n.client.Build(ctx, hops)
	}, popts)
	n.pool.Start()
	tb.Cleanup(func() { _ = n.pool.Close() })
	n.server = proxy.NewServer(n.pool, proxy.ServerOptions{})
	tb.Cleanup(func() { _ = n.server.Close() })
	sa, err := n.server.ListenSOCKS("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ha, err := n.server.ListenHTTP("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	n.socks, n.http = sa.String(), ha.String()
	return n
}

// waitPrebuilt waits until the pool has a clean circuit ready.
func (n *network) waitPrebuilt(tb testing.TB) {
	tb.Helper()
	testutil.WaitFor(tb, 20*time.Second, "a prebuilt circuit", func() bool { return n.pool.Stats().Clean > 0 })
}

// fileServer serves a random file at /file and a small page at / on
// 127.0.0.1, and returns its port.
func fileServer(tb testing.TB, size int) (port string, body []byte) {
	u, body := testutil.FileServer(tb, size)
	_, port, _ = net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/file"))
	return port, body
}
