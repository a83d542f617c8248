package node

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
)

// TestNoRole: a configuration with neither role is refused.
func TestNoRole(t *testing.T) {
	c := testConfig(t)
	c.Client.Enabled = false
	if _, err := New(t.Context(), c, Options{}); !errors.Is(err, ErrNoRole) {
		t.Fatalf("got %v, want ErrNoRole", err)
	}
}

// TestStartTwice: Start after Start or after Close fails.
func TestStartTwice(t *testing.T) {
	c := relayConfig(t, false, nil, nil)
	n := startNode(t, c, Options{})
	if err := n.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// TestClientWithoutRelays: a client in a network of one relay (too few for
// a path) keeps its proxies up and answers a dial with a SOCKS error once
// the build timeout has passed.
func TestClientWithoutRelays(t *testing.T) {
	boot := startNode(t, relayConfig(t, false, nil, nil), Options{})
	c := testConfig(t)
	c.Client.BuildTimeout = config.Duration(2 * time.Second)
	for _, a := range boot.Addrs() {
		c.Node.Bootstrap = append(c.Node.Bootstrap, a.String())
	}
	cl := startNode(t, c, Options{AllowSameSubnet: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := testutil.SOCKSDial(ctx, cl.SOCKSAddr().String(), "127.0.0.1:9")
	if _, ok := errors.AsType[*testutil.SOCKSError](err); !ok {
		t.Fatalf("dial without relays: %v, want a SOCKS error reply", err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("dial timed out: %v", err)
	}
}

// TestJoinRetry: a node whose bootstrap peer is down keeps trying, and
// joins once the peer is up.
func TestJoinRetry(t *testing.T) {
	bootCfg := relayConfig(t, false, nil, nil)
	// The bootstrap peer comes back on its port: on a loopback address of
	// its own, so that no other test's listener on 127.0.0.1 can take the
	// freed port meanwhile.
	bootCfg.Node.Listen = []string{"/ip4/127.0.0.3/tcp/0"}
	boot, err := New(t.Context(), bootCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := boot.Addrs()[0]
	if err := boot.Close(); err != nil {
		t.Fatal(err)
	}

	c := testConfig(t)
	c.Node.Bootstrap = []string{addr.String()}
	// Another loopback address: the kernel may hand the freed port of
	// the bootstrap peer to this node, which would then be dialing itself.
	c.Node.Listen = []string{"/ip4/127.0.0.2/tcp/0"}
	cl := startNode(t, c, Options{AllowSameSubnet: true})
	select {
	case <-cl.Joined():
		t.Fatal("joined through a bootstrap peer that is down")
	case <-time.After(1500 * time.Millisecond):
	}
	if st := cl.Status(); st.Joined || cl.SOCKSAddr() == nil {
		t.Fatalf("status while joining: joined %v, SOCKS %v", st.Joined, cl.SOCKSAddr())
	}

	// The same node again, on the same address.
	transport, _ := peer.SplitAddr(addr)
	bootCfg.Node.Listen = []string{transport.String()}
	boot2 := startNode(t, bootCfg, Options{})
	if boot2.ID() != boot.ID() {
		t.Fatalf("bootstrap node came back as %s, was %s", boot2.ID(), boot.ID())
	}
	select {
	case <-cl.Joined():
	case <-time.After(45 * time.Second):
		t.Fatal("not joined 45s after the bootstrap peer came up")
	}
}
