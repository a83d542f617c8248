package trust

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOwnRecords(t *testing.T) {
	tt := newTestTIS(t)
	me, friend := tt.enroll(t, "me"), tt.enroll(t, "friend")
	dir := t.TempDir()
	o, err := LoadOwn(dir)
	if err != nil || len(o.Vouches) != 0 {
		t.Fatalf("LoadOwn of nothing: %v, %v", o, err)
	}
	now := time.Now()
	if _, err := o.Vouch(me.key, me.cert.ID, friend.cert.ID, 0, 0, now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("weight 0: %v", err)
	}
	if _, err := o.Vouch(me.key, me.cert.ID, friend.cert.ID, 70, 0, now); err != nil {
		t.Fatal(err)
	}
	att := attest(me.cert.ID, "account-linked:forge")
	att.IssuedAt, att.Expires = now.Add(-time.Hour).Truncate(time.Second), now.Add(time.Hour).Truncate(time.Second)
	if err := att.Sign(tt.rootPriv); err != nil {
		t.Fatal(err)
	}
	code, err := FormatAttestation(att)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseAttestation(code)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.AddAttestation(parsed, friend.cert.ID); !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("attestation about someone else added: %v", err)
	}
	if err := o.AddAttestation(parsed, me.cert.ID); err != nil {
		t.Fatal(err)
	}
	if err := o.Save(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, OwnFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("own file: %v %v", fi, err)
	}
	o, err = LoadOwn(dir)
	if err != nil || len(o.Vouches) != 1 || len(o.Attestations) != 1 {
		t.Fatalf("reloaded: %+v %v", o, err)
	}
	b1, enc1, err := o.Bundle(me.cert, me.key, now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (Validator{Root: tt.root}).Validate(BundleKey(me.cert.ID), enc1); err != nil {
		t.Fatalf("own bundle does not validate: %v", err)
	}
	// Withdraw in the same second: the withdrawal still cancels, and the
	// next bundle is newer than the last.
	if _, err := o.Withdraw(me.key, me.cert.ID, friend.cert.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Withdraw(me.key, me.cert.ID, friend.cert.ID, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second withdrawal: %v", err)
	}
	b2, _, err := o.Bundle(me.cert, me.key, now, b1.IssuedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !b2.IssuedAt.After(b1.IssuedAt) || len(b2.Vouches) != 0 || len(b2.Withdrawals) != 1 {
		t.Fatalf("bundle after withdrawal: at %v (prev %v), %d vouches, %d withdrawals", b2.IssuedAt, b1.IssuedAt, len(b2.Vouches), len(b2.Withdrawals))
	}
	recs := Records{Vouches: b1.Vouches, Withdrawals: b2.Withdrawals}
	if s := Compute(recs, Options{Now: now, Seeds: nil}); s.Vouches() != 0 {
		t.Fatalf("withdrawn vouch still active (%d identities)", s.Len())
	}
	// Vouching again after the withdrawal counts again.
	v, err := o.Vouch(me.key, me.cert.ID, friend.cert.ID, 40, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	recs.Vouches = append(recs.Vouches, v)
	if Compute(recs, Options{Now: now.Add(2 * time.Second)}).Vouches() != 1 {
		t.Fatal("a vouch after a withdrawal does not count")
	}
}

func FuzzParseAttestation(f *testing.F) {
	a := attest(testID(1), "email-verified")
	if err := a.Sign(ed25519Priv(f)); err != nil {
		f.Fatal(err)
	}
	code, _ := FormatAttestation(a)
	f.Add(code)
	f.Add(AttestationPrefix + "AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAttestation(s)
		if err != nil {
			return
		}
		if _, err := FormatAttestation(a); err != nil {
			t.Fatal(err)
		}
	})
}
