package trust

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

// TestTISRelayScore runs a real TIS with a TISScorer: a relay operator
// gets a statement of its band under the node ID, signed by the root;
// someone holding only one of the two keys, or two people's
// certificates, gets nothing.
func TestTISRelayScore(t *testing.T) {
	var view *View
	s := tistest.Start(t, func(root ed25519.PublicKey) tis.ServerOptions {
		view = NewView(ViewOptions{Root: root})
		return tis.ServerOptions{RelayScorer: TISScorer{View: view}}
	})
	root, priv := s.Root, s.RootKey
	c := tis.NewClient(s.URL, root)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type person struct {
		nodeKey crypto.PrivKey
		mkey    ed25519.PrivateKey
		e       *tis.Enrollment
	}
	enroll := func(name string) person {
		p := s.Enroll(t, name)
		return person{p.NodeKey, p.MatryoshkaKey, p.Enrollment}
	}
	seed, op, other := enroll("seed"), enroll("operator"), enroll("other")

	// Before the view has scores there is no statement.
	if _, err := c.FetchRelayScore(ctx, op.nodeKey, op.e.NodeCert, op.mkey, op.e.MatryoshkaCert); err == nil {
		t.Fatal("statement without scores")
	}
	dht := &memDHT{v: Validator{Root: root}, m: map[string][]byte{}}
	now := time.Now()
	sl, _ := tis.NewSeedList([]tis.ID{seed.e.MatryoshkaCert.ID}, now.Add(-time.Minute), ed25519.PrivateKey(priv))
	enc, _ := sl.Encode()
	if err := dht.put(SeedsKey(root), enc); err != nil {
		t.Fatal(err)
	}
	sid := identity{key: seed.mkey, cert: seed.e.MatryoshkaCert}
	if err := dht.put(BundleKey(sid.cert.ID), signedBundle(t, sid, now, []*Vouch{nowVouch(op.e.MatryoshkaCert.ID, 100)}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := view.Refresh(ctx, dht, nil); err != nil {
		t.Fatal(err)
	}
	b, err := c.FetchRelayScore(ctx, op.nodeKey, op.e.NodeCert, op.mkey, op.e.MatryoshkaCert)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeRelayScore(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(root, time.Now()); err != nil {
		t.Fatal(err)
	}
	if lo, hi := st.Range(); st.Node != op.e.NodeCert.ID || lo > 75 || hi < 75 {
		t.Fatalf("statement for %s band %d-%d, want the node ID and a band holding 75", st.Node, lo, hi)
	}

	for _, tc := range []struct {
		name string
		nk   crypto.PrivKey
		nc   *tis.Certificate
		mk   ed25519.PrivateKey
		mc   *tis.Certificate
		want error
	}{
		{"another person's Matryoshka certificate", op.nodeKey, op.e.NodeCert, other.mkey, other.e.MatryoshkaCert, tis.ErrProofOfPossession},
		{"node key not the certificate's", other.nodeKey, op.e.NodeCert, op.mkey, op.e.MatryoshkaCert, tis.ErrProofOfPossession},
		{"Matryoshka key not the certificate's", op.nodeKey, op.e.NodeCert, other.mkey, op.e.MatryoshkaCert, tis.ErrProofOfPossession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.FetchRelayScore(ctx, tc.nk, tc.nc, tc.mk, tc.mc)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
