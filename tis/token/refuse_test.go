package token

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

func TestIssuerRefusesUnenrolled(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	alice := f.tis.Enroll(t, "alice")
	other := tistest.Start(t, nil).Enroll(t, "alice") // enrolled, but at another TIS
	revoked := f.tis.Enroll(t, "carol")
	if err := f.tis.Server.Revoke(revoked.Enrollment.NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	mallory, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := *alice.Enrollment.NodeCert
	raw, _ := mallory.GetPublic().Raw()
	forged.SubjectKey = raw // alice's certificate made out to mallory's key

	for _, tc := range []struct {
		name string
		c    *Client
		want error
	}{
		{"certificate of another TIS", NewClient(f.tis.URL, f.tis.Root, other.NodeKey, other.Enrollment.NodeCert), ErrNotEnrolled},
		{"revoked certificate", f.client(revoked), ErrNotEnrolled},
		{"stolen certificate, other key", NewClient(f.tis.URL, f.tis.Root, mallory, alice.Enrollment.NodeCert), ErrNotEnrolled},
		{"forged certificate", NewClient(f.tis.URL, f.tis.Root, mallory, &forged), ErrNotEnrolled},
		{"stale request", &Client{BaseURL: f.tis.URL, Root: f.tis.Root, NodeKey: alice.NodeKey, NodeCert: alice.Enrollment.NodeCert, Now: func() time.Time { return f.clock.Now().Add(-10 * time.Minute) }}, ErrStaleRequest},
		{"client pinning another root", NewClient(f.tis.URL, other.Enrollment.NodeCert.SubjectKey, alice.NodeKey, alice.Enrollment.NodeCert), ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.Now == nil {
				tc.c.Now = f.clock.Now
			}
			if b, err := tc.c.Issue(ctx(t), testGuard, 2); !errors.Is(err, tc.want) {
				t.Fatalf("Issue: %v (batch %v), want %v", err, b, tc.want)
			}
		})
	}
	// The refusals counted nothing: alice still gets her full allowance.
	if _, b := issue(t, f.client(alice), 1); b.Remaining != DefaultTokensPerPeriod-1 {
		t.Fatalf("alice has %d remaining after the refusals, want %d", b.Remaining, DefaultTokensPerPeriod-1)
	}
}

func TestIssuerRefusesMalformedAndWrongRequests(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	alice := f.tis.Enroll(t, "alice")
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"empty", nil, http.StatusBadRequest, "malformed"},
		{"garbage", bytes.Repeat([]byte{1}, 300), http.StatusBadRequest, "malformed"},
		{"over the cap", make([]byte, MaxIssueRequestSize+1), http.StatusBadRequest, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(f.tis.URL+PathIssue, contentType, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get(api.Header) != tc.code {
				t.Fatalf("answered %s, code %q; want %d, %q", resp.Status, resp.Header.Get(api.Header), tc.status, tc.code)
			}
		})
	}

	keys, err := f.issuer.Keys(ctx(t), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	request := func(mod func(*IssueRequest)) *IssueRequest {
		q := &IssueRequest{Root: tis.RootKeyID(f.tis.Root), NodeCert: alice.Enrollment.NodeCert, Key: keys[0].ID(), Time: f.clock.Now(), Blinded: [][]byte{make([]byte, 256)}}
		q.Blinded[0][1] = 1
		mod(q)
		msg, err := q.signed()
		if err != nil {
			t.Fatal(err)
		}
		if q.Signature, err = alice.NodeKey.Sign(msg); err != nil {
			t.Fatal(err)
		}
		return q
	}
	for _, tc := range []struct {
		name string
		q    *IssueRequest
		want error
	}{
		{"for another TIS", request(func(q *IssueRequest) { q.Root[0] ^= 1 }), ErrUnknownKey},
		{"under the next period's key", request(func(q *IssueRequest) { q.Key = keys[1].ID() }), ErrUnknownKey},
		{"blinded message of the wrong size", request(func(q *IssueRequest) { q.Blinded[0] = q.Blinded[0][:255] }), ErrMalformed},
		{"blinded message above the modulus", request(func(q *IssueRequest) { q.Blinded[0] = bytes.Repeat([]byte{0xff}, 256) }), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.issuer.Issue(ctx(t), tc.q); !errors.Is(err, tc.want) {
				t.Fatalf("Issue: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestGuardRefusesBadTokens(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	toks, batch := issue(t, f.client(f.tis.Enroll(t, "alice")), 4)
	other := newFixture(t, IssuerOptions{})
	otherToks, _ := issue(t, other.client(other.tis.Enroll(t, "bob")), 1)

	forgedSig := bytes.Clone(toks[0])
	forgedSig[len(forgedSig)-1] ^= 1
	t1, _ := DecodeToken(toks[1])
	swapped := &Token{Key: t1.Key, Signature: t1.Signature} // a valid signature over another seed
	rand.Read(swapped.Seed[:])
	swappedEnc, _ := swapped.Encode()

	now := f.clock.Now()
	for _, tc := range []struct {
		name string
		tok  []byte
		at   time.Time
		want error
	}{
		{"missing", nil, now, ErrMalformed},
		{"truncated", toks[0][:100], now, ErrMalformed},
		{"trailing bytes", append(bytes.Clone(toks[0]), 0), now, ErrMalformed},
		{"forged signature", forgedSig, now, ErrForged},
		{"signature of another seed", swappedEnc, now, ErrForged},
		{"from another TIS", otherToks[0], now, ErrUnknownKey},
		{"before its period and the clock skew", toks[0], batch.Key.Start.Add(-tis.DefaultMaxClockSkew - time.Second), ErrNotYetValid},
		{"after its period and grace", toks[0], batch.Key.End.Add(DefaultGrace), ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			guard := f.redeemer(t, RedeemerOptions{})
			if err := guard.Redeem(tc.tok, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("Redeem: %v, want %v", err, tc.want)
			}
			if _, spent := guard.Keys(); spent != 0 {
				t.Fatalf("a refused token counted as spent")
			}
		})
	}

	t.Run("made for another guard", func(t *testing.T) {
		// Each guard accepts only its own tokens, so a token spent at one
		// cannot be spent again at another, nor stolen by the guard it was
		// shown to.
		guard, other := f.redeemer(t, RedeemerOptions{}), f.redeemerFor(t, otherGuard, RedeemerOptions{})
		if err := guard.Redeem(toks[3], now); err != nil {
			t.Fatal(err)
		}
		if err := other.Redeem(toks[3], now); !errors.Is(err, ErrForged) {
			t.Fatalf("at another guard: %v, want ErrForged", err)
		}
	})
	t.Run("a forged copy does not spend the real token", func(t *testing.T) {
		guard := f.redeemer(t, RedeemerOptions{})
		if err := guard.Redeem(forgedSig, now); !errors.Is(err, ErrForged) {
			t.Fatalf("forged copy: %v", err)
		}
		if err := guard.Redeem(toks[0], now); err != nil {
			t.Fatalf("real token after a forged copy: %v", err)
		}
	})
	t.Run("within the grace after its period", func(t *testing.T) {
		guard := f.redeemer(t, RedeemerOptions{})
		if err := guard.Redeem(toks[2], batch.Key.End.Add(DefaultGrace-time.Second)); err != nil {
			t.Fatalf("Redeem: %v", err)
		}
	})
	t.Run("spent-token cache full", func(t *testing.T) {
		guard := f.redeemer(t, RedeemerOptions{MaxSpent: 1})
		if err := guard.Redeem(toks[0], now); err != nil {
			t.Fatal(err)
		}
		if err := guard.Redeem(toks[1], now); !errors.Is(err, ErrCacheFull) {
			t.Fatalf("second token: %v, want ErrCacheFull", err)
		}
		if err := guard.Redeem(toks[0], now); !errors.Is(err, ErrSpent) {
			t.Fatalf("first token again: %v, want ErrSpent", err)
		}
	})
}

func TestGuardRefusesBadKeys(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	now := f.clock.Now()
	keys, err := f.issuer.Keys(ctx(t), now)
	if err != nil {
		t.Fatal(err)
	}
	other := newFixture(t, IssuerOptions{})
	otherKeys, err := other.issuer.Keys(ctx(t), now)
	if err != nil {
		t.Fatal(err)
	}
	tampered := *keys[0]
	tampered.End = tampered.End.Add(time.Hour) // a longer life than the TIS signed

	// A restarted issuer without its key file signs a second key for the
	// same period: a guard that knows the first refuses it.
	restarted, err := NewIssuer(f.tis.Server, IssuerOptions{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	second, err := restarted.Keys(ctx(t), now)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		keys []*Key
		want error
	}{
		{"another TIS's key", otherKeys, ErrUnknownKey},
		{"tampered key", []*Key{&tampered}, tis.ErrSignature},
		{"second key for a period", second, ErrKeyConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			guard := f.redeemer(t, RedeemerOptions{})
			if err := guard.AddKeys(tc.keys, now); !errors.Is(err, tc.want) {
				t.Fatalf("AddKeys: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestIssuerKeysInStore: a restarted issuer (Mount again on the TIS's
// store) keeps the period's key, so tokens stay good and guards need no
// new key, and keeps the count, so a restart gives no enrollment a second
// budget.
func TestIssuerKeysInStore(t *testing.T) {
	const limit = 5
	f := newFixture(t, IssuerOptions{TokensPerPeriod: limit})
	alice := f.tis.Enroll(t, "alice")
	toks, _ := issue(t, f.client(alice), 3)

	second, err := Mount(f.tis.Server, f.tis.Dir, IssuerOptions{TokensPerPeriod: limit, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	guard := f.redeemer(t, RedeemerOptions{})
	keys, err := second.Keys(ctx(t), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := guard.AddKeys(keys, f.clock.Now()); err != nil {
		t.Fatalf("keys after restart: %v", err)
	}
	more, b := issue(t, f.client(alice), limit)
	if len(more) != limit-3 || b.Remaining != 0 {
		t.Fatalf("after restart: %d tokens, %d remaining; want %d, 0", len(more), b.Remaining, limit-3)
	}
	for _, tok := range append(toks, more...) {
		if err := guard.Redeem(tok, f.clock.Now()); err != nil {
			t.Fatalf("Redeem: %v", err)
		}
	}
}

// TestImportKeyFile: the keys file of an older version is moved into the
// store at Mount: the period keeps its key, and the file is gone.
func TestImportKeyFile(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	tisDir := t.TempDir()
	priv, err := rsa.GenerateKey(rand.Reader, DefaultKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	period := f.clock.Now().Unix() / int64(DefaultPeriod/time.Second)
	b, err := json.Marshal(map[string]any{"version": 1, "keys": []map[string]any{
		{"period": period + 5, "key": x509.MarshalPKCS1PrivateKey(priv)}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tisDir, KeyFile)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(f.tis.Server, tisDir, IssuerOptions{Now: f.clock.Now}); !errors.Is(err, tis.ErrPermissions) {
		t.Fatalf("world-readable key file: %v, want ErrPermissions", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(f.tis.Server, tisDir, IssuerOptions{Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("key file after import: %v", err)
	}
	der, err := f.tis.Server.TokenKey(ctx(t), DefaultPeriod, period+5, nil)
	if err != nil || !bytes.Equal(der, x509.MarshalPKCS1PrivateKey(priv)) {
		t.Fatalf("imported key: %v (%d bytes)", err, len(der))
	}
}

// TestRestartInGrace: an issuer restarted in the grace after a period
// still publishes that period's key from the store (guards that start
// then need it), and one that never had it publishes two.
func TestRestartInGrace(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	if _, err := f.issuer.Keys(ctx(t), f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	period := int64(DefaultPeriod / time.Second)
	next := time.Unix((f.clock.Now().Unix()/period+1)*period, 0)
	f.clock.Add(next.Sub(f.clock.Now()) + time.Minute)
	restarted, err := Mount(f.tis.Server, f.tis.Dir, IssuerOptions{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := restarted.Keys(ctx(t), f.clock.Now())
	if err != nil || len(keys) != 3 || !keys[0].End.Equal(next) {
		t.Fatalf("keys after a restart in the grace: %d, %v", len(keys), err)
	}
	fresh := newFixture(t, IssuerOptions{})
	fresh.clock.Add(next.Sub(fresh.clock.Now()) + time.Minute)
	for range 2 {
		if keys, err := fresh.issuer.Keys(ctx(t), fresh.clock.Now()); err != nil || len(keys) != 2 {
			t.Fatalf("keys of an issuer without the previous period's: %d, %v", len(keys), err)
		}
	}
}
