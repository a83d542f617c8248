package node

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
)

// tokenSource enrolls a new person with s and returns an issuance client
// for that enrollment.
func (s *testTIS) tokenSource(t testing.TB, name string) *token.Client {
	t.Helper()
	cfg := testConfig(t)
	en := s.enroll(t, cfg, name)
	priv, err := LoadOrCreateIdentity(cfg.Node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return token.NewClient(s.url, s.root, priv, en.NodeCert)
}

func issueOne(t testing.TB, c *token.Client, guard peer.ID) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := c.Issue(ctx, guard, 1)
	if err != nil {
		t.Fatalf("issue a token: %v", err)
	}
	enc, err := b.Tokens[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestAdmissionByToken: on real hosts, a guard that requires enrollment
// admits a circuit from a fresh, unknown libp2p identity that presents a
// token of its TIS made for it, and refuses one without a token, a
// reused token, a token made for another guard and a token of another
// TIS, each with its DESTROY reason. The enrolled client builds with
// tokens from its wallet, and the guard redeemed them.
func TestAdmissionByToken(t *testing.T) {
	s := newTestTIS(t)
	net, _ := newTISNet(t, s, 3)
	net.waitReady(t)

	st := net.client.admit.State()
	if st == nil || st.Tokens == 0 || st.Remaining < 0 {
		t.Fatalf("client's wallet after its first circuit: %+v, want tokens and a known allowance", st)
	}
	spent := 0
	for _, r := range net.relays {
		_, n := r.admit.Redeemed()
		spent += n
	}
	if spent == 0 {
		t.Fatal("no guard redeemed a token of the client's circuits")
	}

	path, err := net.client.disc.SelectPath(discovery.PathRequest{Hops: 3, Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	hops := circuitHops(path)
	guard, other := hops[0].ID, hops[1].ID
	alice := s.tokenSource(t, "alice")
	good := issueOne(t, alice, guard)
	forOther := issueOne(t, alice, other)
	foreign := issueOne(t, newTestTIS(t).tokenSource(t, "mallory"), guard)

	tests := []struct {
		name  string
		token []byte
		want  circuit.DestroyReason // DestroyNone: the circuit is built
	}{
		{"no token", nil, circuit.DestroyTokenMissing},
		{"valid token", good, circuit.DestroyNone},
		{"reused token", good, circuit.DestroyTokenSpent},
		{"token for another guard", forOther, circuit.DestroyTokenInvalid},
		{"token of another TIS", foreign, circuit.DestroyTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh identity each time: the guard knows nothing of it.
			h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			o := circuit.DefaultClientOptions()
			o.Token = func(context.Context, peer.ID) ([]byte, error) { return tt.token, nil }
			cc := circuit.NewClient(h, o)
			t.Cleanup(func() { cc.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := cc.Build(ctx, hops)
			if tt.want == circuit.DestroyNone {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				c.Close()
				return
			}
			var de *circuit.DestroyedError
			var be *circuit.BuildError
			if !errors.As(err, &de) || de.Reason != tt.want || !errors.As(err, &be) || be.Hop != 0 {
				t.Fatalf("build: %v, want DESTROY(%v) at hop 0", err, tt.want)
			}
		})
	}
}

// TestClientOutOfTokens: a client whose enrollment has had all of its
// period's tokens gets token.ErrNoTokens from a build, and its status
// says so.
func TestClientOutOfTokens(t *testing.T) {
	const limit = 6
	s := newTestTISWith(t, token.IssuerOptions{TokensPerPeriod: limit})
	net, _ := newTISNetClient(t, s, 3, func(c *config.Config) { c.Client.PrebuiltCircuits = 1 })
	net.waitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for range 2 * limit {
		var c interface{ Close() error }
		if c, err = net.client.build(ctx, false); err != nil {
			break
		}
		_ = c.Close()
	}
	if !errors.Is(err, token.ErrNoTokens) || !errors.Is(err, token.ErrLimit) {
		t.Fatalf("build after %d tokens: %v, want ErrNoTokens for ErrLimit", limit, err)
	}
	if st := net.client.admit.State(); st.Tokens != 0 || st.Remaining != 0 || !errors.Is(st.LastError, token.ErrLimit) {
		t.Fatalf("wallet: %+v, want empty, none remaining, the limit as last error", st)
	}
}

// TestClientShowsNoCertificate: an unenrolled peer that connects to a
// client-only node and asks for its certificate on tis.CertProtocol gets
// nothing; a relay still hands out its own (it is in its descriptor).
func TestClientShowsNoCertificate(t *testing.T) {
	s := newTestTIS(t)
	net, _ := newTISNet(t, s, 3)
	net.waitReady(t)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ask := func(nd *Node) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.Connect(ctx, peer.AddrInfo{ID: nd.ID(), Addrs: nd.Addrs()}); err != nil {
			t.Fatalf("connect: %v", err)
		}
		st, err := h.NewStream(ctx, nd.ID(), tis.CertProtocol)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		return io.ReadAll(st)
	}
	if cert, err := ask(net.relays[0]); err != nil || len(cert) == 0 {
		t.Fatalf("a relay's certificate: %d bytes, %v; want it", len(cert), err)
	}
	if cert, err := ask(net.client); err == nil || len(cert) != 0 {
		t.Fatalf("the client answered with %d bytes (%v), want no answer", len(cert), err)
	}
	// Nor does the host it builds circuits from, asked by a guard on the
	// connection the circuits use.
	var view map[peer.ID]bool
	waitFor(t, 30*time.Second, "the guards to see the client's circuits", func() bool {
		view = guardView(net.relays)
		return len(view) > 0
	})
	for id := range view {
		for _, r := range net.relays {
			if len(r.host.Network().ConnsToPeer(id)) == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			st, err := r.host.NewStream(network.WithNoDial(ctx, "test"), id, tis.CertProtocol)
			cancel()
			if err == nil {
				_ = st.SetDeadline(time.Now().Add(10 * time.Second))
				cert, _ := io.ReadAll(st)
				_ = st.Close()
				t.Fatalf("the client's circuit host opened the certificate protocol (%d bytes)", len(cert))
			}
		}
	}
}

// guardView is every peer ID that holds a circuit (an inbound circuit
// stream) through one of relays, other than the relays themselves: what
// the guards know a client by.
func guardView(relays []*Node) map[peer.ID]bool {
	isRelay := map[peer.ID]bool{}
	for _, r := range relays {
		isRelay[r.ID()] = true
	}
	seen := map[peer.ID]bool{}
	for _, r := range relays {
		for _, c := range r.host.Network().Conns() {
			for _, st := range c.GetStreams() {
				if st.Protocol() == circuit.ProtocolID && st.Stat().Direction == network.DirInbound && !isRelay[c.RemotePeer()] {
					seen[c.RemotePeer()] = true
				}
			}
		}
	}
	return seen
}

// TestGuardViewAcrossRestart: the guards see a client's circuits come
// from a peer ID that is not the node's own (DHT and trust) identity,
// and a different one after the client restarts: nothing but the
// address links the two.
func TestGuardViewAcrossRestart(t *testing.T) {
	s := newTestTIS(t)
	net, _ := newTISNet(t, s, 3)
	net.waitReady(t)
	self := net.client.ID()
	var before map[peer.ID]bool
	waitFor(t, 30*time.Second, "the guards to see the client's circuits", func() bool {
		before = guardView(net.relays)
		return len(before) > 0
	})
	cfg := net.client.Config()
	if err := net.client.Close(); err != nil {
		t.Fatal(err)
	}
	net.client = startNode(t, cfg, Options{AllowSameSubnet: true})
	net.waitReady(t)
	if net.client.ID() != self {
		t.Fatalf("the node's own identity changed across the restart: %s, then %s", self, net.client.ID())
	}
	var after map[peer.ID]bool
	waitFor(t, 30*time.Second, "the guards to see the restarted client's circuits only", func() bool {
		after = guardView(net.relays)
		for id := range after {
			if before[id] {
				return false // an old link not torn down yet
			}
		}
		return len(after) > 0
	})
	for _, view := range []map[peer.ID]bool{before, after} {
		if view[self] {
			t.Fatalf("a guard saw the client's own identity %s on a circuit", self)
		}
	}
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("guards saw %d identities before and %d after the restart, want one each (one per start)", len(before), len(after))
	}
}
