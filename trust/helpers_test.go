package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

// testTIS is a real TIS serving HTTP on 127.0.0.1.
type testTIS struct {
	root     ed25519.PublicKey
	rootPriv ed25519.PrivateKey
	url      string
	s        *tistest.TIS
}

func newTestTIS(t testing.TB) *testTIS {
	t.Helper()
	s := tistest.Start(t, nil)
	return &testTIS{root: s.Root, rootPriv: s.RootKey, url: s.URL, s: s}
}

// identity is an enrolled user: Matryoshka key and certificate.
type identity struct {
	key  ed25519.PrivateKey
	cert *tis.Certificate
}

func (tt *testTIS) enroll(t testing.TB, name string) identity {
	t.Helper()
	p := tt.s.Enroll(t, name)
	return identity{key: p.MatryoshkaKey, cert: p.Enrollment.MatryoshkaCert}
}

// testID returns a distinct identity for index i.
func testID(i int) tis.ID {
	var id tis.ID
	id[0] = 0xAA
	id[28], id[29], id[30], id[31] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return id
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func vouch(from, to tis.ID, w uint8) *Vouch {
	return &Vouch{Voucher: from, Vouchee: to, Weight: w, IssuedAt: t0, Expires: t0.Add(365 * 24 * time.Hour)}
}

func attest(subject tis.ID, kind string) *Attestation {
	return &Attestation{Subject: subject, Kind: kind, IssuedAt: t0, Expires: t0.Add(365 * 24 * time.Hour)}
}

func ed25519Key(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func ed25519Priv(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
