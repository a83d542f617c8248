package token

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

var (
	errMissing = errors.New("missing")
	errSpent   = errors.New("spent")
	errInvalid = errors.New("invalid")
	refusals   = Refusals{Missing: errMissing, Spent: errSpent, Invalid: errInvalid}
)

// TestAdmissionRoles: what an Admission opens from its inputs.
func TestAdmissionRoles(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	alice := f.tis.Enroll(t, "alice")
	for _, tc := range []struct {
		name                 string
		url                  string
		enrolled             bool
		client, guard        bool
		wantWallet, wantGard bool
	}{
		{"client", f.tis.URL, true, true, false, true, false},
		{"guard", f.tis.URL, true, false, true, false, true},
		{"both", f.tis.URL, true, true, true, true, true},
		{"no URL", "", true, true, true, false, false},
		{"not enrolled", f.tis.URL, false, true, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := AdmissionConfig{URL: tc.url, Root: f.tis.Root, NodeKey: alice.NodeKey, Self: testGuard,
				Client: tc.client, Guard: tc.guard, WalletFile: filepath.Join(t.TempDir(), "tokens.bin"), Refusals: refusals}
			if tc.enrolled {
				cfg.NodeCert = alice.Enrollment.NodeCert
			}
			ad, err := NewAdmission(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ad.Close() })
			if got := ad.State() != nil; got != tc.wantWallet {
				t.Fatalf("wallet: %v, want %v", got, tc.wantWallet)
			}
			if got := ad.guard != nil; got != tc.wantGard {
				t.Fatalf("guard: %v, want %v", got, tc.wantGard)
			}
			tok, err := ad.Take(ctx(t), testGuard)
			if tc.wantWallet != (tok != nil) || err != nil {
				t.Fatalf("Take: %d bytes, %v", len(tok), err)
			}
		})
	}
	if _, err := NewAdmission(AdmissionConfig{}); err == nil {
		t.Fatal("NewAdmission without refusals: no error")
	}
	var none *Admission
	if tok, err := none.Take(ctx(t), testGuard); tok != nil || err != nil || none.State() != nil || none.Close() != nil {
		t.Fatalf("nil admission: %v, %v", tok, err)
	}
}

// TestAdmissionAdmit: a guard's decisions, each with its refusal.
func TestAdmissionAdmit(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	other := newFixture(t, IssuerOptions{})
	alice := f.tis.Enroll(t, "alice")
	relay := guardID(9)
	errNotRelay := errors.New("not an enrolled relay")
	ad, err := NewAdmission(AdmissionConfig{URL: f.tis.URL, Root: f.tis.Root, NodeKey: alice.NodeKey,
		NodeCert: alice.Enrollment.NodeCert, Self: testGuard, Guard: true, Refusals: refusals,
		AdmitRelay: func(_ context.Context, prev peer.ID) error {
			if prev == relay {
				return nil
			}
			return errNotRelay
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ad.Close() })
	noGuard, err := NewAdmission(AdmissionConfig{Refusals: refusals})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := issue(t, f.client(alice), 2)
	forOther, err := f.client(alice).Issue(ctx(t), otherGuard, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _ := forOther.Tokens[0].Encode()
	foreign, _ := issue(t, other.client(other.tis.Enroll(t, "mallory")), 1)
	client := guardID(8)
	for _, tc := range []struct {
		name string
		ad   *Admission
		prev peer.ID
		tok  []byte
		want error
	}{
		{"token", ad, client, toks[0], nil},
		{"token again", ad, client, toks[0], errSpent},
		{"token for another guard", ad, client, otherTok, errInvalid},
		{"another TIS's token", ad, client, foreign[0], errInvalid},
		{"garbage", ad, client, []byte("garbage"), errInvalid},
		{"relay without token", ad, relay, nil, nil},
		{"client without token", ad, client, nil, errMissing},
		{"no guard, token", noGuard, client, toks[1], errInvalid},
		{"no relay admission, no token", noGuard, relay, nil, errMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ad.Admit(ctx(t), tc.prev, tc.tok)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Admit: %v, want %v", err, tc.want)
			}
		})
	}
	if keys, spent := ad.Redeemed(); keys == 0 || spent != 1 {
		t.Fatalf("Redeemed: %d keys, %d spent; want some, 1", keys, spent)
	}
}
