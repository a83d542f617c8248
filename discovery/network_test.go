package discovery

import (
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// testRelay is a relay node of a test network whose published information
// a test may change.
type testRelay struct {
	h host.Host
	d *Discovery

	mu   sync.Mutex
	info RelayInfo
}

func (r *testRelay) relayInfo() (RelayInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info, nil
}

func (r *testRelay) setInfo(info RelayInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.info = info
}

func (r *testRelay) close() {
	r.d.Close()
	r.h.Close()
}

// testNetwork is a bootstrap node and relays on 127.0.0.1.
type testNetwork struct {
	t         testing.TB
	boot      *Discovery
	bootAddrs []ma.Multiaddr
	relays    []*testRelay
	opts      []Option
}

// relayFlags gives relay i its roles: all relay, every other one an exit
// for 80 and 443, every third also a guard (and 0 is both).
func relayFlags(i int) (Flags, []PortRange) {
	f := FlagRelay
	var ports []PortRange
	if i%2 == 0 {
		f |= FlagExit
		ports = []PortRange{{80, 80}, {443, 443}}
	}
	if i%3 == 0 || i%3 == 1 && i < 6 {
		f |= FlagGuard
	}
	return f, ports
}

// newTestNetwork starts a bootstrap node and n relays, each knowing only the
// bootstrap node, and waits until every relay has published its
// descriptor. opts apply to every node.
func newTestNetwork(t testing.TB, n int, opts ...Option) *testNetwork {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	bh := newHost(t)
	boot, err := New(bh, append([]Option{Server(), NoDiscovery()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	if err := boot.Start(ctx); err != nil {
		t.Fatal(err)
	}
	net := &testNetwork{t: t, boot: boot, bootAddrs: p2pAddrs(boot), opts: opts}
	net.relays = make([]*testRelay, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		net.relays[i] = net.newRelay(i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = net.relays[i].d.Start(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("relay %d start: %v", i, err)
		}
	}
	// Publish again once every relay is in (each published when it
	// started): the closest peers of a key are now the ones that stay
	// closest.
	for i, r := range net.relays {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = r.d.Publish(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("relay %d publish: %v", i, err)
		}
	}
	return net
}

// newRelay creates relay i, not started.
func (net *testNetwork) newRelay(i int) *testRelay {
	t := net.t
	t.Helper()
	flags, ports := relayFlags(i)
	r := &testRelay{h: newHost(t), info: RelayInfo{
		Flags:     flags,
		OnionKey:  OnionKey{Key: randKey(), Expires: time.Now().Add(time.Hour)},
		ExitPorts: ports,
	}}
	opts := append([]Option{
		Publish(r.relayInfo),
		NoDiscovery(),
		Bootstrap(net.bootAddrs...),
		RepublishInterval(time.Hour),
	}, net.opts...)
	d, err := New(r.h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	t.Cleanup(func() { d.Close() })
	return r
}

// newClient starts a client that knows only the bootstrap node's address.
func (net *testNetwork) newClient(opts ...Option) *Discovery {
	t := net.t
	t.Helper()
	return net.newClientOn(newHost(t), opts...)
}

func (net *testNetwork) newClientOn(h host.Host, opts ...Option) *Discovery {
	t := net.t
	t.Helper()
	all := append([]Option{Bootstrap(net.bootAddrs...), AllowSameSubnet(), RefreshInterval(time.Hour)}, net.opts...)
	c, err := New(h, append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(testContext(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	return c
}

// discoverAll refreshes c until it knows want relays.
func discoverAll(t testing.TB, c *Discovery, want int, timeout time.Duration) {
	t.Helper()
	ctx := testContext(t, timeout)
	waitFor(t, timeout, "relays discovered", func() bool {
		c.Refresh(ctx)
		return len(c.Relays()) >= want
	})
}

// p2pAddrs are d's host's addresses with /p2p/, for bootstrap lists.
func p2pAddrs(d *Discovery) []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: d.host.ID(), Addrs: d.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}
