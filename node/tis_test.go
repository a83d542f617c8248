package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

// testTIS is a TIS on 127.0.0.1 that the test closes at its end.
type testTIS struct {
	srv  *tis.Server
	url  string
	root ed25519.PublicKey
}

func newTestTIS(t testing.TB) *testTIS {
	t.Helper()
	s := tistest.Start(t, nil)
	return &testTIS{srv: s.Server, url: s.URL, root: s.Root}
}

// enroll enrolls the node of cfg and points cfg at the TIS.
func (s *testTIS) enroll(t testing.TB, cfg *config.Config, name string) *tis.Enrollment {
	t.Helper()
	priv, err := LoadOrCreateIdentity(cfg.Node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	en, err := tis.EnrollNode(ctx, s.url, s.root, priv, cfg.Node.DataDir, name, name+"@demo.invalid")
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	s.use(cfg)
	return en
}

func (s *testTIS) use(cfg *config.Config) {
	cfg.TIS.RootKey = tis.FormatKey(s.root)
	cfg.TIS.URL = s.url
	cfg.TIS.RevocationRefresh = config.Duration(300 * time.Millisecond)
}

// newTISNet starts n enrolled relays (the last two exits) and an enrolled
// client, all requiring certificates.
func newTISNet(t *testing.T, s *testTIS, n int) (*testNet, []*tis.Enrollment) {
	t.Helper()
	return newTISNetClient(t, s, n, func(*config.Config) {})
}

// newTISNetClient is newTISNet with the client's configuration changed by
// edit before it starts: n relays enrolled with s (the last two exits,
// accepting 127.0.0.1), joining through relay 0, then an enrolled client.
func newTISNetClient(t *testing.T, s *testTIS, n int, edit func(*config.Config)) (*testNet, []*tis.Enrollment) {
	t.Helper()
	net := &testNet{}
	var boot []string
	var ens []*tis.Enrollment
	for i := range n {
		cfg := relayConfig(t, i >= n-2, []string{"accept 127.0.0.1:*"}, boot)
		ens = append(ens, s.enroll(t, cfg, fmt.Sprintf("relay-%d", i)))
		nd := startNode(t, cfg, Options{})
		net.relays = append(net.relays, nd)
		if i == 0 {
			for _, a := range nd.Addrs() {
				boot = append(boot, a.String())
			}
		}
	}
	cfg := testConfig(t)
	cfg.Node.Bootstrap = boot
	s.enroll(t, cfg, "demo-client")
	edit(cfg)
	net.client = startNode(t, cfg, Options{AllowSameSubnet: true})
	return net, ens
}

// revokeDropped waits until the client knows relay i, revokes its
// certificate (en) at the TIS, and waits until the client drops it.
func revokeDropped(t *testing.T, s *testTIS, net *testNet, i int, en *tis.Enrollment, what string) {
	t.Helper()
	id := net.relays[i].ID()
	waitFor(t, 30*time.Second, fmt.Sprintf("relay %d known", i), func() bool {
		_, ok := net.client.disc.Descriptor(id)
		return ok
	})
	if err := s.srv.Revoke(en.NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, what, func() bool {
		_, ok := net.client.disc.Descriptor(id)
		return !ok
	})
}

// TestTISNetwork: enrolled relays and an enrolled client build circuits
// with certificates required everywhere; relays publish their
// certificates; a revoked relay leaves the client's directory and paths
// after the next revocation fetch.
func TestTISNetwork(t *testing.T) {
	s := newTestTIS(t)
	net, ens := newTISNet(t, s, 4)
	net.waitReady(t)

	for _, d := range net.client.disc.Relays() {
		data, ok := d.Extension(tis.DescriptorExtension)
		if !ok {
			t.Fatalf("relay %s publishes no certificate", d.PeerID)
		}
		if _, err := tis.VerifyNodeCertBytes(data, s.root, d.PeerID, time.Now(), nil); err != nil {
			t.Fatalf("relay %s certificate: %v", d.PeerID, err)
		}
	}

	// Revoke exit relay 3.
	revoked := net.relays[3].ID()
	revokeDropped(t, s, net, 3, ens[3], "revoked relay dropped")
	for range 100 {
		path, err := net.client.disc.SelectPath(discovery.PathRequest{Hops: 3, Port: 443})
		if err != nil {
			t.Fatalf("select: %v", err)
		}
		for _, h := range path {
			if h.PeerID == revoked {
				t.Fatal("revoked relay chosen")
			}
		}
	}
	// The revoked relay is refused as a previous hop too: a relay's
	// admission check uses the same list.
	if err := net.relays[0].tis.AdmitPeer(context.Background(), revoked); err == nil {
		waitFor(t, 10*time.Second, "relay 0 has the new list", func() bool {
			return net.relays[0].tis.AdmitPeer(context.Background(), revoked) != nil
		})
	}

	// Every node's revocation loop stops with it.
	net.close()
	_ = s.srv.Close()
	checkNoLeak(t)
}

// TestGuardRequiresEnrollment: a guard that requires enrollment destroys
// a circuit from a peer without a certificate; an enrolled client builds.
func TestGuardRequiresEnrollment(t *testing.T) {
	s := newTestTIS(t)
	net, _ := newTISNet(t, s, 3)
	net.waitReady(t) // the enrolled client built a circuit

	path, err := net.client.disc.SelectPath(discovery.PathRequest{Hops: 3, Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	hops := make([]circuit.Hop, len(path))
	for i, d := range path {
		hops[i] = circuit.Hop{ID: d.PeerID, Addrs: d.Addrs, OnionKey: d.OnionKey.Key}
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	cc := circuit.NewClient(h, circuit.DefaultClientOptions())
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cc.Build(ctx, hops)
	if err == nil {
		c.Close()
		t.Fatal("a peer without a certificate built a circuit")
	}
	var de *circuit.DestroyedError
	var be *circuit.BuildError
	if !errors.As(err, &de) || de.Reason != circuit.DestroyNotAdmitted || !errors.As(err, &be) || be.Hop != 0 {
		t.Fatalf("build: %v, want DESTROY(%v) at hop 0", err, circuit.DestroyNotAdmitted)
	}
}

// TestNotEnrolled: a node with tis.root_key but no enrollment does not
// start.
func TestNotEnrolled(t *testing.T) {
	s := newTestTIS(t)
	cfg := testConfig(t)
	s.use(cfg)
	_, err := New(t.Context(), cfg, Options{})
	if !errors.Is(err, tis.ErrNotEnrolled) {
		t.Fatalf("New: %v, want ErrNotEnrolled", err)
	}
}
