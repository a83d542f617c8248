package e2e

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/exitnode"
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
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
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
	deadline := time.Now().Add(20 * time.Second)
	for n.pool.Stats().Clean == 0 {
		if time.Now().After(deadline) {
			tb.Fatal("no prebuilt circuit after 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fileServer serves a random file at /file and a small page at /.
func fileServer(tb testing.TB, size int) (port string, body []byte) {
	tb.Helper()
	body = make([]byte, size)
	if _, err := rand.Read(body); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html><head><title>pikcio e2e</title></head><body><h1 id="greeting">Hello through three hops</h1></body></html>`))
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port, body
}
