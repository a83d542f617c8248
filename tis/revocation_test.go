package tis

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"
)

func signedList(t testing.TB, root ed25519.PrivateKey, seq uint64, serials ...Serial) []byte {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	l := &RevocationList{Sequence: seq, IssuedAt: now, NextUpdate: now.Add(time.Hour), Serials: serials}
	if err := l.sign(root); err != nil {
		t.Fatal(err)
	}
	b, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRevocationListVerify(t *testing.T) {
	root, foreign := newRootKey(t), newRootKey(t)
	rootPub := root.Public().(ed25519.PublicKey)
	good := signedList(t, root, 7, Serial{1}, Serial{2}, Serial{9})
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	seqBumped := bytes.Clone(good)
	seqBumped[1+8+7]++ // last byte of the sequence number

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"valid", good, nil},
		{"foreign TIS", signedList(t, foreign, 7, Serial{1}), ErrUnknownIssuer},
		{"bad signature", flipped, ErrSignature},
		{"sequence changed", seqBumped, ErrSignature},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"empty", nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseRevocationList(tc.data, rootPub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && (!l.Revoked(Serial{2}) || l.Revoked(Serial{3}) || l.Sequence != 7) {
				t.Fatalf("list content: %v", l)
			}
		})
	}
	var nilList *RevocationList
	if nilList.Revoked(Serial{1}) || !nilList.Stale(time.Now()) {
		t.Fatal("nil list")
	}
	l, _ := DecodeRevocationList(good)
	if l.Stale(time.Now()) || !l.Stale(time.Now().Add(2*time.Hour)) {
		t.Fatal("Stale")
	}
}

func TestRevocationSelectAndCache(t *testing.T) {
	root, foreign := newRootKey(t), newRootKey(t)
	rootPub := root.Public().(ed25519.PublicKey)
	v := RevocationValidator{Root: rootPub}
	key := RevocationKey(rootPub)
	l1 := signedList(t, root, 1, Serial{1})
	l2 := signedList(t, root, 2, Serial{1}, Serial{2})
	forged := signedList(t, foreign, 99)

	if err := v.Validate(key, l2); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate("/"+RevocationNamespace+"/other", l2); err == nil {
		t.Fatal("wrong key accepted")
	}
	tests := []struct {
		name   string
		values [][]byte
		want   int
		err    bool
	}{
		{"higher sequence wins", [][]byte{l1, l2}, 1, false},
		{"order does not matter", [][]byte{l2, l1}, 0, false},
		{"forged higher sequence ignored", [][]byte{l1, forged}, 0, false},
		{"first of equals", [][]byte{l2, l2}, 0, false},
		{"nothing valid", [][]byte{forged, []byte("x")}, 0, true},
		{"empty", nil, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Select(key, tc.values)
			if (err != nil) != tc.err || (err == nil && got != tc.want) {
				t.Fatalf("Select = %d, %v; want %d (error %v)", got, err, tc.want, tc.err)
			}
		})
	}

	c := NewRevocationCache(rootPub)
	steps := []struct {
		data     []byte
		replaced bool
		err      error
		seq      uint64
	}{
		{l2, true, nil, 2},
		{l1, false, nil, 2}, // older list does not replace a newer one
		{forged, false, ErrUnknownIssuer, 2},
		{signedList(t, root, 3), true, nil, 3},
	}
	for i, s := range steps {
		ok, err := c.Update(s.data)
		if ok != s.replaced || !errors.Is(err, s.err) || c.List().Sequence != s.seq {
			t.Fatalf("step %d: Update = %v, %v; sequence %d; want %v, %v, %d", i, ok, err, c.List().Sequence, s.replaced, s.err, s.seq)
		}
	}
	if c.List().Revoked(Serial{1}) {
		t.Fatal("list 3 has no serials")
	}

	// Concurrent updates keep the highest.
	c = NewRevocationCache(rootPub)
	lists := [][]byte{l1, l2, signedList(t, root, 5), signedList(t, root, 4)}
	var wg sync.WaitGroup
	for _, l := range lists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Update(l)
		}()
	}
	wg.Wait()
	if c.List().Sequence != 5 {
		t.Fatalf("after concurrent updates: sequence %d, want 5", c.List().Sequence)
	}
}

func TestServerRevocations(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	tt := newTestTIS(t, ServerOptions{Now: now, RevocationLifetime: 2 * time.Hour})
	ctx := testCtx(t)
	n := newTestNode(t)
	e, err := tt.client().Enroll(ctx, n.key, n.mkey, "Erin", "erin@example.org")
	if err != nil {
		t.Fatal(err)
	}
	cache := NewRevocationCache(tt.root)
	l0, err := tt.client().FetchRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !cache.Offer(l0) || len(l0.Serials) != 0 || l0.NextUpdate.Sub(l0.IssuedAt) != 2*time.Hour {
		t.Fatalf("first list: %v", l0)
	}
	if err := VerifyNodeCert(e.NodeCert, tt.root, n.id, time.Now(), cache.List()); err != nil {
		t.Fatal(err)
	}
	if err := tt.srv.Revoke(e.NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	if err := tt.srv.Revoke(e.NodeCert.Serial); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	l1, err := FetchRevocations(ctx, tt.url, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	if l1.Sequence != l0.Sequence+1 || !cache.Offer(l1) {
		t.Fatalf("after revoke: %v (before %v)", l1, l0)
	}
	if err := VerifyNodeCert(e.NodeCert, tt.root, n.id, time.Now(), cache.List()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked certificate: %v, want ErrRevoked", err)
	}
	// Within half the lifetime the list is served unchanged; after, re-signed.
	advance(59 * time.Minute)
	if l, _ := tt.srv.RevocationList(); l.Sequence != l1.Sequence {
		t.Fatalf("re-signed early: %v", l)
	}
	advance(2 * time.Minute)
	l2, err := tt.client().FetchRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Sequence != l1.Sequence+1 || !l2.Revoked(e.NodeCert.Serial) || !l2.IssuedAt.After(l1.IssuedAt) {
		t.Fatalf("refreshed list: %v", l2)
	}
	// A client pinning another key refuses the list.
	if _, err := FetchRevocations(ctx, tt.url, newRootKey(t).Public().(ed25519.PublicKey)); !errors.Is(err, ErrUnknownIssuer) {
		t.Fatalf("foreign pin: %v", err)
	}
}
