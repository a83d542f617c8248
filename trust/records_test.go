package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// encodeSamples returns one valid encoding of each record kind (signed
// with a throwaway key), used by the round-trip tests and as fuzz seeds.
func encodeSamples(t testing.TB) map[string][]byte {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v := vouch(testID(1), testID(2), 42)
	w := &Withdrawal{Voucher: testID(1), Vouchee: testID(2), IssuedAt: t0.Add(time.Hour)}
	a := attest(testID(2), "account-linked:github")
	s := &RelayScore{Node: testID(3), Band: 3, IssuedAt: t0, Expires: t0.Add(time.Hour)}
	out := map[string][]byte{}
	for name, r := range map[string]interface {
		Sign(ed25519.PrivateKey) error
		Encode() ([]byte, error)
	}{"vouch": v, "withdrawal": w, "attestation": a, "relayscore": s} {
		if err := r.Sign(key); err != nil {
			t.Fatalf("sign %s: %v", name, err)
		}
		b, err := r.Encode()
		if err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	samples := encodeSamples(t)
	decoders := map[string]func([]byte) ([]byte, error){
		"vouch":       func(b []byte) ([]byte, error) { return reencode(DecodeVouch(b)) },
		"withdrawal":  func(b []byte) ([]byte, error) { return reencode(DecodeWithdrawal(b)) },
		"attestation": func(b []byte) ([]byte, error) { return reencode(DecodeAttestation(b)) },
		"relayscore":  func(b []byte) ([]byte, error) { return reencode(DecodeRelayScore(b)) },
	}
	for name, dec := range decoders {
		t.Run(name, func(t *testing.T) {
			b := samples[name]
			got, err := dec(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !bytes.Equal(got, b) {
				t.Fatal("re-encoding differs")
			}
			// Every other kind's bytes, truncations and trailing bytes fail.
			for other, ob := range samples {
				if other != name {
					if _, err := dec(ob); !errors.Is(err, ErrMalformed) {
						t.Errorf("decoding a %s: %v, want ErrMalformed", other, err)
					}
				}
			}
			for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...)} {
				if _, err := dec(bad); !errors.Is(err, ErrMalformed) {
					t.Errorf("decode %d bytes: %v, want ErrMalformed", len(bad), err)
				}
			}
		})
	}
}

type encoder interface{ Encode() ([]byte, error) }

func reencode[T encoder](r T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return r.Encode()
}

func TestMalformedFields(t *testing.T) {
	tests := []struct {
		name string
		rec  encoder
	}{
		{"self vouch", &Vouch{Voucher: testID(1), Vouchee: testID(1), Weight: 1, IssuedAt: t0, Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
		{"weight 0", &Vouch{Voucher: testID(1), Vouchee: testID(2), Weight: 0, IssuedAt: t0, Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
		{"weight 101", &Vouch{Voucher: testID(1), Vouchee: testID(2), Weight: 101, IssuedAt: t0, Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
		{"expiry before issue", &Vouch{Voucher: testID(1), Vouchee: testID(2), Weight: 1, IssuedAt: t0, Expires: t0, Signature: make([]byte, 64)}},
		{"sub-second time", &Vouch{Voucher: testID(1), Vouchee: testID(2), Weight: 1, IssuedAt: t0.Add(time.Millisecond), Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
		{"no signature", &Withdrawal{Voucher: testID(1), Vouchee: testID(2), IssuedAt: t0}},
		{"kind upper case", &Attestation{Subject: testID(1), Kind: "Email", IssuedAt: t0, Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
		{"kind empty", &Attestation{Subject: testID(1), IssuedAt: t0, Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
		{"band 5", &RelayScore{Band: 5, IssuedAt: t0, Expires: t0.Add(time.Hour), Signature: make([]byte, 64)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.rec.Encode(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Encode: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	tt := newTestTIS(t)
	alice, bob := tt.enroll(t, "alice"), tt.enroll(t, "bob")
	now := time.Now().Add(time.Minute)
	issued := now.Truncate(time.Second).Add(-time.Minute)
	good := &Vouch{Voucher: alice.cert.ID, Vouchee: bob.cert.ID, Weight: 50, IssuedAt: issued, Expires: issued.Add(time.Hour)}
	if err := good.Sign(alice.key); err != nil {
		t.Fatal(err)
	}
	// bob signs a vouch claiming to be alice's.
	forged := *good
	if err := forged.Sign(bob.key); err != nil {
		t.Fatal(err)
	}
	tampered := *good
	tampered.Weight = 100
	expired := *good
	expired.Expires = issued.Add(30 * time.Second)
	if err := expired.Sign(alice.key); err != nil {
		t.Fatal(err)
	}
	future := *good
	future.IssuedAt, future.Expires = issued.Add(time.Hour), issued.Add(2*time.Hour)
	if err := future.Sign(alice.key); err != nil {
		t.Fatal(err)
	}
	_, otherRoot, _ := ed25519.GenerateKey(rand.Reader)
	vouchTests := []struct {
		name string
		v    *Vouch
		cert *tis.Certificate
		root ed25519.PublicKey
		want error
	}{
		{"good", good, alice.cert, tt.root, nil},
		{"forged signature", &forged, alice.cert, tt.root, ErrSignature},
		{"tampered weight", &tampered, alice.cert, tt.root, ErrSignature},
		{"certificate of the vouchee", good, bob.cert, tt.root, ErrWrongIdentity},
		{"no certificate", good, nil, tt.root, ErrWrongIdentity},
		{"other TIS", good, alice.cert, otherRoot.Public().(ed25519.PublicKey), tis.ErrUnknownIssuer},
		{"expired", &expired, alice.cert, tt.root, ErrExpired},
		{"not yet valid", &future, alice.cert, tt.root, ErrNotYetValid},
	}
	for _, c := range vouchTests {
		t.Run("vouch/"+c.name, func(t *testing.T) {
			err := c.v.Verify(c.cert, c.root, now, nil)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}

	w := &Withdrawal{Voucher: alice.cert.ID, Vouchee: bob.cert.ID, IssuedAt: issued}
	if err := w.Sign(bob.key); err != nil {
		t.Fatal(err)
	}
	if err := w.Verify(alice.cert, tt.root, now, nil); !errors.Is(err, ErrSignature) {
		t.Errorf("withdrawal signed by the wrong key: %v, want ErrSignature", err)
	}
	if err := w.Sign(alice.key); err != nil {
		t.Fatal(err)
	}
	if err := w.Verify(alice.cert, tt.root, now, nil); err != nil {
		t.Errorf("withdrawal: %v", err)
	}

	_, attester, _ := ed25519.GenerateKey(rand.Reader)
	attesters := []ed25519.PublicKey{tt.root, attester.Public().(ed25519.PublicKey)}
	for _, c := range []struct {
		name string
		key  ed25519.PrivateKey
		want error
	}{
		{"root", tt.rootPriv, nil},
		{"configured attester", attester, nil},
		{"user key", alice.key, ErrUnknownAttester},
	} {
		t.Run("attestation/"+c.name, func(t *testing.T) {
			a := &Attestation{Subject: bob.cert.ID, Kind: "email-verified", IssuedAt: issued, Expires: issued.Add(time.Hour)}
			if err := a.Sign(c.key); err != nil {
				t.Fatal(err)
			}
			err := a.Verify(attesters, now)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
			a.Kind = "account-linked:x"
			if c.want == nil {
				if err := a.Verify(attesters, now); !errors.Is(err, ErrSignature) {
					t.Fatalf("changed kind: %v, want ErrSignature", err)
				}
			}
		})
	}

	for _, c := range []struct {
		name     string
		key      ed25519.PrivateKey
		lifetime time.Duration
		want     error
	}{
		{"root", tt.rootPriv, time.Hour, nil},
		{"attester may not state relay scores", attester, time.Hour, ErrUnknownAttester},
		{"too long", tt.rootPriv, MaxRelayScoreLifetime + time.Second, ErrLifetime},
	} {
		t.Run("relayscore/"+c.name, func(t *testing.T) {
			s := &RelayScore{Node: testID(7), Band: BandOf(63), IssuedAt: issued, Expires: issued.Add(c.lifetime)}
			if err := s.Sign(c.key); err != nil {
				t.Fatal(err)
			}
			err := s.Verify(tt.root, now)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
}

func TestBands(t *testing.T) {
	for _, c := range []struct {
		score int
		band  uint8
	}{{-1, 0}, {0, 0}, {19, 0}, {20, 1}, {63, 3}, {79, 3}, {80, 4}, {100, 4}, {150, 4}} {
		if got := BandOf(c.score); got != c.band {
			t.Errorf("BandOf(%d) = %d, want %d", c.score, got, c.band)
		}
		if lo, hi := BandRange(c.band); c.score >= 0 && c.score <= 100 && (c.score < lo || c.score > hi) {
			t.Errorf("BandRange(%d) = %d..%d does not hold %d", c.band, lo, hi, c.score)
		}
	}
}
