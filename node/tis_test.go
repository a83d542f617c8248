package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
	"github.com/pikcio/pikcio/tis/token"
)

// testTIS is a TIS on 127.0.0.1 that the test closes at its end.
type testTIS struct {
	srv  *tis.Server
	url  string
	root ed25519.PublicKey
}

func newTestTIS(t testing.TB) *testTIS {
	t.Helper()
	return newTestTISWith(t, token.IssuerOptions{})
}

// newTestTISWith is newTestTIS with a token issuer of opts.
func newTestTISWith(t testing.TB, opts token.IssuerOptions) *testTIS {
	t.Helper()
	s := tistest.Start(t, nil)
	mountTokens(t, s, opts)
	return &testTIS{srv: s.Server, url: s.URL, root: s.Root}
}

// mountTokens mounts a token issuer on s, as every TIS has.
func mountTokens(t testing.TB, s *tistest.TIS, opts token.IssuerOptions) {
	t.Helper()
	if _, err := token.Mount(s.Server, s.Dir, opts); err != nil {
		t.Fatal(err)
	}
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

// newTISNet is newTISNetClient with the client's configuration unchanged.
func newTISNet(t *testing.T, s *testTIS, n int) (*testNet, []*tis.Enrollment) {
	t.Helper()
	return newTISNetClient(t, s, n, func(*config.Config) {})
}

// newTISNetClient starts, with the client's configuration changed by
// edit before it starts, n relays enrolled with s (the last two exits,
// accepting 127.0.0.1), joining through relay 0, then an enrolled client.
func newTISNetClient(t *testing.T, s *testTIS, n int, edit func(*config.Config)) (*testNet, []*tis.Enrollment) {
	t.Helper()
	var ens []*tis.Enrollment
	net := newTestNet(t, netOpts{relays: n, exits: 2, policy: []string{"accept 127.0.0.1:*"},
		relay: func(i int, cfg *config.Config) { ens = append(ens, s.enroll(t, cfg, fmt.Sprintf("relay-%d", i))) },
		client: func(cfg *config.Config) {
			s.enroll(t, cfg, "demo-client")
			edit(cfg)
		}})
	return net, ens
}

// RevokeDropped waits until client knows relay, revokes its certificate
// (en) at srv, and waits until client drops it (what names the wait).
func RevokeDropped(t *testing.T, srv *tis.Server, client, relay *Node, en *tis.Enrollment, what string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the relay known", func() bool {
		_, ok := client.disc.Descriptor(relay.ID())
		return ok
	})
	if err := srv.Revoke(en.NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, what, func() bool {
		_, ok := client.disc.Descriptor(relay.ID())
		return !ok
	})
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
