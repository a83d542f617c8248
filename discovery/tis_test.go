package discovery

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
)

// testTIS is a TIS served on 127.0.0.1 for tests.
type testTIS struct {
	srv  *tis.Server
	url  string
	root ed25519.PublicKey
}

func newTestTIS(t *testing.T, opts tis.ServerOptions) *testTIS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tis")
	if _, err := tis.Init(dir); err != nil {
		t.Fatal(err)
	}
	return openTestTIS(t, dir, opts)
}

// openTestTIS serves the TIS in dir.
func openTestTIS(t *testing.T, dir string, opts tis.ServerOptions) *testTIS {
	t.Helper()
	opts.OpenEnrollment = opts.Mailer == nil
	srv, err := tis.NewServer(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &testTIS{srv: srv, url: tis.BaseURL(addr.String()), root: srv.PublicKey()}
}

// enroll certifies key at the TIS whose clock is now.
func (s *testTIS) enroll(t *testing.T, key crypto.PrivKey, name string, now time.Time) *tis.Certificate {
	t.Helper()
	_, mk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := tis.NewClient(s.url, s.root)
	c.Now = func() time.Time { return now }
	e, err := c.Enroll(testContext(t, 30*time.Second), key, mk, name, name+"@demo.invalid")
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	return e.NodeCert
}

func encodeCert(t *testing.T, c *tis.Certificate) []byte {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var errNoCert = errors.New("no TIS certificate")

// tisCheck is the check a node gives VerifyRelay.
func tisCheck(root ed25519.PublicKey, revs *tis.RevocationCache) func(*Descriptor) error {
	return func(d *Descriptor) error {
		data, ok := d.Extension(tis.DescriptorExtension)
		if !ok {
			return errNoCert
		}
		_, err := tis.VerifyNodeCertBytes(data, root, d.PeerID, time.Now(), revs.List())
		return err
	}
}

// TestVerifyRelayTIS: with the TIS check, relays whose certificate is
// missing, expired, revoked, self-signed, forged or from another TIS
// never enter the directory nor any path; a revocation drops a relay at
// the next Recheck.
func TestVerifyRelayTIS(t *testing.T) {
	now := time.Now()
	net := newTestNetwork(t, 9)
	key := func(i int) crypto.PrivKey { return net.relays[i].h.Peerstore().PrivKey(net.relays[i].h.ID()) }
	certs := map[int][]byte{}

	dir := filepath.Join(t.TempDir(), "tis")
	if _, err := tis.Init(dir); err != nil {
		t.Fatal(err)
	}
	// The same TIS with an old clock first: a certificate that expired an
	// hour ago.
	past := now.Add(-5 * time.Hour)
	old := openTestTIS(t, dir, tis.ServerOptions{CertLifetime: 3 * time.Hour, Now: func() time.Time { return past }})
	certs[5] = encodeCert(t, old.enroll(t, key(5), "relay-5", past))
	old.srv.Close()
	main := openTestTIS(t, dir, tis.ServerOptions{})
	foreign := newTestTIS(t, tis.ServerOptions{})

	var revoked *tis.Certificate
	for i := range 5 {
		c := main.enroll(t, key(i), fmt.Sprintf("relay-%d", i), now)
		certs[i] = encodeCert(t, c)
		revoked = c // relay 4's, revoked below
	}
	certs[6] = encodeCert(t, foreign.enroll(t, key(6), "relay-6", now))
	// Self-signed: the relay's own key as issuer.
	self := *revoked
	raw, _ := key(7).Raw()
	self.SubjectKey = ed25519.PrivateKey(raw).Public().(ed25519.PublicKey)
	self.Issuer = tis.RootKeyID(self.SubjectKey)
	self.Signature = ed25519.Sign(ed25519.PrivateKey(raw), []byte("self-signed"))
	certs[7] = encodeCert(t, &self)
	// relay 8 publishes no certificate.

	ctx := testContext(t, time.Minute)
	for i, r := range net.relays {
		info, _ := r.relayInfo()
		if c, ok := certs[i]; ok {
			info.Extensions = []Extension{{Type: tis.DescriptorExtension, Data: c}}
		}
		r.setInfo(info)
		if err := r.d.Publish(ctx); err != nil {
			t.Fatalf("relay %d publish: %v", i, err)
		}
	}

	revs := tis.NewRevocationCache(main.root)
	c := net.newClient(VerifyRelay(tisCheck(main.root, revs)))
	good := map[peer.ID]bool{}
	for i := range 5 {
		good[net.relays[i].h.ID()] = true
	}
	discoverAll(t, c, 5, time.Minute)
	for _, d := range c.Relays() {
		if !good[d.PeerID] {
			t.Fatalf("relay %s with a bad certificate in the directory", d.PeerID)
		}
	}
	assertPaths := func(allowed map[peer.ID]bool) {
		t.Helper()
		for range 200 {
			path, err := c.SelectPath(PathRequest{Hops: 3, Port: 443})
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			for _, h := range path {
				if !allowed[h.PeerID] {
					t.Fatalf("path through %s, which has no valid certificate", h.PeerID)
				}
			}
		}
	}
	assertPaths(good)

	// Revoke relay 4; after the client takes the new list and rechecks,
	// relay 4 is gone.
	if err := main.srv.Revoke(revoked.Serial); err != nil {
		t.Fatal(err)
	}
	list, err := tis.FetchRevocations(context.Background(), main.url, main.root)
	if err != nil {
		t.Fatal(err)
	}
	if !revs.Offer(list) {
		t.Fatal("newer revocation list not kept")
	}
	if n := c.Recheck(); n != 1 {
		t.Fatalf("Recheck dropped %d relays, want 1", n)
	}
	delete(good, net.relays[4].h.ID())
	if _, err := c.Refresh(ctx); err != nil {
		t.Logf("refresh: %v", err)
	}
	if containsID(c.Relays(), net.relays[4].h.ID()) {
		t.Fatal("revoked relay back in the directory after a refresh")
	}
	assertPaths(good)
}
