package trust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// memDHT is a record store that validates like a DHT node does: it keeps,
// per key, the value the validator selects. It stands in for the DHT in
// unit tests; node tests use the real one.
type memDHT struct {
	v  Validator
	mu sync.Mutex
	m  map[string][]byte
}

func (d *memDHT) put(key string, val []byte) error {
	if err := d.v.Validate(key, val); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.m[key]; ok {
		if i, _ := d.v.Select(key, [][]byte{old, val}); i == 0 {
			return nil
		}
	}
	d.m[key] = val
	return nil
}

func (d *memDHT) GetRecord(ctx context.Context, key string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.m[key]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%s: not found", key)
}

func signedBundle(t testing.TB, id identity, at time.Time, vouches []*Vouch, withdrawals []*Withdrawal, atts []*Attestation) []byte {
	t.Helper()
	for _, v := range vouches {
		v.Voucher = id.cert.ID
		if err := v.Sign(id.key); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range withdrawals {
		w.Voucher = id.cert.ID
		if err := w.Sign(id.key); err != nil {
			t.Fatal(err)
		}
	}
	b := &Bundle{Cert: id.cert, IssuedAt: at.Truncate(time.Second), Vouches: vouches, Withdrawals: withdrawals, Attestations: atts}
	if err := b.Sign(id.key); err != nil {
		t.Fatal(err)
	}
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func nowVouch(to tis.ID, w uint8) *Vouch {
	now := time.Now().Truncate(time.Second)
	return &Vouch{Vouchee: to, Weight: w, IssuedAt: now.Add(-time.Minute), Expires: now.Add(24 * time.Hour)}
}

func TestBundleVerify(t *testing.T) {
	tt := newTestTIS(t)
	other := newTestTIS(t)
	a, b := tt.enroll(t, "alice"), tt.enroll(t, "bob")
	stranger := other.enroll(t, "mallory")
	now := time.Now()
	att := &Attestation{Subject: a.cert.ID, Kind: "account-linked:forge", IssuedAt: now.Add(-time.Hour).Truncate(time.Second), Expires: now.Add(time.Hour).Truncate(time.Second)}
	if err := att.Sign(tt.rootPriv); err != nil {
		t.Fatal(err)
	}
	good := signedBundle(t, a, now, []*Vouch{nowVouch(b.cert.ID, 50)}, nil, []*Attestation{att})
	v := Validator{Root: tt.root}

	tampered := bytes.Clone(good)
	tampered[len(tampered)-3] ^= 1
	expired := nowVouch(b.cert.ID, 10)
	expired.IssuedAt, expired.Expires = now.Add(-48*time.Hour).Truncate(time.Second), now.Add(-24*time.Hour).Truncate(time.Second)
	withExpired := signedBundle(t, a, now, []*Vouch{expired}, nil, nil)
	forgedVouch := func() []byte {
		fv := nowVouch(b.cert.ID, 50)
		fv.Voucher = a.cert.ID
		if err := fv.Sign(b.key); err != nil { // signed by the wrong key
			t.Fatal(err)
		}
		bu := &Bundle{Cert: a.cert, IssuedAt: now.Truncate(time.Second), Vouches: []*Vouch{fv}}
		if err := bu.Sign(a.key); err != nil {
			t.Fatal(err)
		}
		enc, _ := bu.Encode()
		return enc
	}()
	foreign := signedBundle(t, stranger, now, nil, nil, nil)
	future := signedBundle(t, a, now.Add(time.Hour), nil, nil, nil)

	for _, tc := range []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"good", BundleKey(a.cert.ID), good, nil},
		{"expired vouch inside is no error", BundleKey(a.cert.ID), withExpired, nil},
		{"under another identity's key", BundleKey(b.cert.ID), good, ErrWrongIdentity},
		{"tampered signature", BundleKey(a.cert.ID), tampered, ErrSignature},
		{"vouch forged by another key", BundleKey(a.cert.ID), forgedVouch, ErrSignature},
		{"certificate of another TIS", BundleKey(stranger.cert.ID), foreign, tis.ErrUnknownIssuer},
		{"issued in the future", BundleKey(a.cert.ID), future, ErrNotYetValid},
		{"garbage", BundleKey(a.cert.ID), []byte("hello"), ErrMalformed},
		{"unknown key space", "/pikcio-trust/x/00", good, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(tc.key, tc.value)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}

	// The records that count: the attestation by the root, the vouch.
	bu, err := DecodeBundle(good)
	if err != nil {
		t.Fatal(err)
	}
	r := bu.Records(tt.root, []ed25519.PublicKey{tt.root}, now, nil)
	if len(r.Vouches) != 1 || len(r.Attestations) != 1 {
		t.Fatalf("records %d vouches %d attestations, want 1 and 1", len(r.Vouches), len(r.Attestations))
	}
	if r := bu.Records(tt.root, []ed25519.PublicKey{other.root}, now, nil); len(r.Attestations) != 0 {
		t.Fatal("an attestation by a key not configured counted")
	}
	bu, _ = DecodeBundle(withExpired)
	if r := bu.Records(tt.root, nil, now, nil); len(r.Vouches) != 0 {
		t.Fatal("an expired vouch counted")
	}
}

func TestValidatorSelectNewest(t *testing.T) {
	tt := newTestTIS(t)
	a, b := tt.enroll(t, "alice"), tt.enroll(t, "bob")
	now := time.Now()
	older := signedBundle(t, a, now.Add(-time.Hour), []*Vouch{nowVouch(b.cert.ID, 50)}, nil, nil)
	newer := signedBundle(t, a, now, nil, []*Withdrawal{{Vouchee: b.cert.ID, IssuedAt: now.Truncate(time.Second)}}, nil)
	v := Validator{Root: tt.root}
	for _, order := range [][][]byte{{older, newer}, {newer, older}, {[]byte("junk"), older, newer}} {
		i, err := v.Select(BundleKey(a.cert.ID), order)
		if err != nil || !bytes.Equal(order[i], newer) {
			t.Fatalf("Select picked %d (%v), want the newer bundle", i, err)
		}
	}
	if _, err := v.Select(BundleKey(a.cert.ID), [][]byte{[]byte("junk")}); err == nil {
		t.Fatal("Select of nothing valid succeeded")
	}
}

// TestViewCrawl crawls from the TIS's seed list along vouches, and checks
// that a withdrawal lowers a score and that a replayed old bundle does not
// bring the vouch back.
func TestViewCrawl(t *testing.T) {
	tt := newTestTIS(t)
	seed, a, b, lone := tt.enroll(t, "seed"), tt.enroll(t, "alice"), tt.enroll(t, "bob"), tt.enroll(t, "lone")
	dht := &memDHT{v: Validator{Root: tt.root}, m: map[string][]byte{}}
	now := time.Now()
	put := func(key string, val []byte) {
		t.Helper()
		if err := dht.put(key, val); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	seeds, err := tis.NewSeedList([]tis.ID{seed.cert.ID}, now.Add(-time.Minute), tt.rootPriv)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := seeds.Encode()
	put(SeedsKey(tt.root), enc)
	put(BundleKey(seed.cert.ID), signedBundle(t, seed, now.Add(-time.Minute), []*Vouch{nowVouch(a.cert.ID, 100)}, nil, nil))
	oldA := signedBundle(t, a, now.Add(-time.Minute), []*Vouch{nowVouch(b.cert.ID, 100)}, nil, nil)
	put(BundleKey(a.cert.ID), oldA)
	put(BundleKey(lone.cert.ID), signedBundle(t, lone, now.Add(-time.Minute), []*Vouch{nowVouch(b.cert.ID, 100)}, nil, nil))

	views := make([]*View, 3)
	for i := range views {
		views[i] = NewView(ViewOptions{Root: tt.root})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := views[i].Refresh(ctx, dht, nil); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for i, v := range views {
		got := []int{}
		for _, id := range []identity{seed, a, b, lone} {
			s, _ := v.Score(id.cert.ID)
			got = append(got, s)
		}
		if fmt.Sprint(got) != "[100 75 56 0]" {
			t.Fatalf("view %d scores seed, alice, bob, lone = %v, want [100 75 56 0]", i, got)
		}
	}

	// Alice withdraws her vouch for Bob.
	w := &Withdrawal{Vouchee: b.cert.ID, IssuedAt: now.Truncate(time.Second)}
	put(BundleKey(a.cert.ID), signedBundle(t, a, now, nil, []*Withdrawal{w}, nil))
	v := views[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Refresh(ctx, dht, nil); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Score(b.cert.ID); s != 0 {
		t.Fatalf("bob scores %d after the withdrawal, want 0", s)
	}
	// A replay of Alice's old bundle is not taken, and the DHT keeps the
	// newer one.
	if took, err := v.Offer(oldA); err != nil || took {
		t.Fatalf("Offer(old bundle) = %v, %v; want refused", took, err)
	}
	put(BundleKey(a.cert.ID), oldA)
	if err := v.Refresh(ctx, dht, nil); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Score(b.cert.ID); s != 0 {
		t.Fatalf("bob scores %d after a replay, want 0", s)
	}
	// Lone is found only when named as extra (a contact, say); its vouch
	// comes from no trust, so Bob stays at 0. (Bob publishes no bundle.)
	if v.Bundles() != 2 {
		t.Fatalf("view holds %d bundles, want seed's and alice's", v.Bundles())
	}
	if err := v.Refresh(ctx, dht, []tis.ID{lone.cert.ID}); err != nil {
		t.Fatal(err)
	}
	if v.Bundles() != 3 {
		t.Fatalf("view holds %d bundles, want 3 with lone's", v.Bundles())
	}
	if s, _ := v.Score(b.cert.ID); s != 0 {
		t.Fatalf("bob scores %d from a vouch by an untrusted identity, want 0", s)
	}
}
