package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlindingTorVector checks blinding, periods and the subcredential
// against tor's src/test/test_hs_common.c test_blinding_basics.
func TestBlindingTorVector(t *testing.T) {
	at := time.Date(1973, 5, 20, 1, 50, 33, 0, time.UTC)
	p := PeriodAt(at, 24*time.Hour)
	if p.Number != 1234 || p.Length != 24*time.Hour {
		t.Fatalf("PeriodAt(%s) = %+v, want period 1234 of 24h", at, p)
	}
	var a Address
	copy(a[:], mustHex(t, "833990B085C1A688C1D4C8B1F6B56AFAF5A2ECA674449E1D704F83765CCB7BC6"))
	b := a.Blind(p)
	if want := mustHex(t, "3A50BF210E8F9EE955AE0014F7A6917FB65EBF098A86305ABB508D1A7291B6D5"); !bytes.Equal(b[:], want) {
		t.Fatalf("blinded key %x, want %x", b, want)
	}
	sub := subcredential(a, b)
	if want := mustHex(t, "635D55907816E8D76398A675A50B1C2F3E36B42A5CA77BA3A0441285161AE07D"); !bytes.Equal(sub[:], want) {
		t.Fatalf("subcredential %x, want %x", sub, want)
	}
}

func TestPeriodBoundaries(t *testing.T) {
	day := 24 * time.Hour
	noon := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := PeriodAt(noon, day)
	if !p.Start().Equal(noon) {
		t.Fatalf("period of %s starts %s, want periods to turn over at 12:00 UTC", noon, p.Start())
	}
	if q := PeriodAt(noon.Add(-time.Second), day); q.Number+1 != p.Number {
		t.Fatalf("a second before noon is %v, want %d", q, p.Number-1)
	}
	if q := PeriodAt(noon.Add(day-time.Second), day); q != p {
		t.Fatalf("%v, want %v", q, p)
	}
	if p.Next().Start() != p.Start().Add(day) {
		t.Fatalf("next period starts %s", p.Next().Start())
	}
	if PeriodAt(noon, 0) != p {
		t.Fatal("zero length is not the default")
	}
}

func TestBlindedSignature(t *testing.T) {
	id := testIdentity(t)
	a := id.Address()
	now := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	p := PeriodAt(now, 0)
	s := id.blind(p)
	if s.pub != a.Blind(p) {
		t.Fatal("the service's blinded key differs from the one clients derive from the address")
	}
	if bytes.Equal(s.pub[:], a[:]) {
		t.Fatal("blinded key equals the service key")
	}
	if q := id.blind(p.Next()); q.pub == s.pub {
		t.Fatal("blinded keys of two periods are equal")
	}
	msg := []byte("descriptor")
	sig := s.sign(msg)
	if !ed25519.Verify(s.pub[:], msg, sig) || !s.pub.Verify(msg, sig) {
		t.Fatal("signature under the blinded key does not verify")
	}
	if ed25519.Verify(a.PublicKey(), msg, sig) {
		t.Fatal("blinded signature verifies under the unblinded key")
	}
	if a.Blind(p.Next()).Verify(msg, sig) {
		t.Fatal("signature verifies under another period's key")
	}
	if s.pub.Verify([]byte("descriptoR"), sig) {
		t.Fatal("signature verifies for another message")
	}
	if q := id.blind(p.Next()).sign(msg); bytes.Equal(q[:32], sig[:32]) {
		t.Fatal("one message signed in two periods shares its nonce")
	}
	if !bytes.Equal(sig, s.sign(msg)) {
		t.Fatal("signing is not deterministic (RFC 8032)")
	}
}

// TestInvalidAddressUse: an Address value that did not come from
// ParseAddress is refused, not blinded to a key anyone could sign for.
func TestInvalidAddressUse(t *testing.T) {
	var zero Address
	p := PeriodAt(testNow, 0)
	if b := zero.Blind(p); b != (BlindedKey{}) {
		t.Fatalf("zero address blinds to %x", b)
	}
	if (BlindedKey{}).Verify([]byte("m"), make([]byte, 64)) {
		t.Fatal("zero blinded key verifies")
	}
	s := newTestService(t, 1, 0, ServerOptions{})
	if _, err := Introduce(context.Background(), rand.Reader, zero, s.desc, s.desc.IntroPoints[0], RendezvousPoint{Relay: testPeer(t)}, testNow); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("Introduce to the zero address: %v", err)
	}
	if _, err := Fetch(context.Background(), nil, zero, p, nil); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("Fetch of the zero address: %v", err)
	}
}

func TestRevision(t *testing.T) {
	id := testIdentity(t)
	p := PeriodAt(testNow, 0)
	r1, r2 := id.Revision(p, testNow), id.Revision(p, testNow.Add(time.Second))
	if r2 <= r1 {
		t.Fatalf("revision does not grow: %d then %d", r1, r2)
	}
	// The next period's descriptor, published now, has a revision that
	// does not follow from this one's.
	next := id.Revision(p.Next(), testNow)
	if d := int64(r1) - int64(next); d == int64(p.Length/time.Second) || r1 == next {
		t.Fatalf("revisions of two periods published together are linked: %d, %d", r1, next)
	}
	if id.Revision(p, testNow) != r1 {
		t.Fatal("revision is not a function of period and time")
	}
	if other := testIdentity(t); other.Revision(p, testNow) == r1 {
		t.Fatal("two services share a revision")
	}
}
