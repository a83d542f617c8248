package token

import (
	"bytes"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/pikcio/pikcio/tis"
)

// recorder is the issuer's view: every issuance request and answer it
// handled, byte for byte.
type recorder struct {
	next http.Handler

	mu        sync.Mutex
	requests  [][]byte
	responses [][]byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PathIssue {
		rec.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxIssueRequestSize+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	rw := httptest.NewRecorder()
	rec.next.ServeHTTP(rw, r)
	rec.mu.Lock()
	rec.requests = append(rec.requests, body)
	rec.responses = append(rec.responses, rw.Body.Bytes())
	rec.mu.Unlock()
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	w.Write(rw.Body.Bytes())
}

// TestTokensUnlinkableToIssuance plays the TIS recording everything it
// sees at issuance, then the TIS and guard comparing notes: the tokens
// redeemed carry nothing the TIS saw, and every token is as consistent
// with every issuance as with its own.
func TestTokensUnlinkableToIssuance(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	rec := &recorder{next: f.issuer.Handler()}
	f.tis.Server.MountTokens(rec)
	alice, bob := f.tis.Enroll(t, "alice"), f.tis.Enroll(t, "bob")
	aliceToks, batch := issue(t, f.client(alice), 3)
	bobToks, _ := issue(t, f.client(bob), 3)
	tokens := append(aliceToks, bobToks...)
	guard := f.redeemer(t, RedeemerOptions{})
	for _, tok := range tokens {
		if err := guard.Redeem(tok, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}

	// What the TIS learns: which enrollment asked (the node certificate)
	// and how many tokens, at what time. Nothing else is in the request.
	if len(rec.requests) != 2 {
		t.Fatalf("TIS saw %d requests, want 2", len(rec.requests))
	}
	var blinded, blindSigs [][]byte
	for i, id := range []tis.ID{alice.Enrollment.NodeCert.ID, bob.Enrollment.NodeCert.ID} {
		q, err := DecodeIssueRequest(rec.requests[i])
		if err != nil {
			t.Fatal(err)
		}
		p, err := DecodeIssueResponse(rec.responses[i])
		if err != nil {
			t.Fatal(err)
		}
		if q.NodeCert.ID != id || len(q.Blinded) != 3 || len(p.Signatures) != 3 {
			t.Fatalf("request %d: node %s, %d messages, %d signatures", i, q.NodeCert.ID, len(q.Blinded), len(p.Signatures))
		}
		blinded = append(blinded, q.Blinded...)
		blindSigs = append(blindSigs, p.Signatures...)
	}

	// No byte string of a token (seed, signature) occurs in the
	// TIS's view.
	view := bytes.Join(append(rec.requests, rec.responses...), nil)
	for i, enc := range tokens {
		tok, err := DecodeToken(enc)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range [][]byte{tok.Seed[:16], tok.Seed[16:], tok.Signature[:16], tok.Signature[len(tok.Signature)-16:]} {
			if bytes.Contains(view, part) {
				t.Fatalf("token %d: %x is in the TIS's view", i, part)
			}
		}
	}

	// Blindness: for every issued (blinded message b, blind signature z)
	// and every redeemed token signature s there is a blinding factor
	// r = z/s mod N, invertible, with r^e * s^e = b: the pair could have
	// come from any of the issuances, so the TIS and a guard pooling their
	// records can do no better than a guess (1 in 6 here). Checked for all
	// 36 pairs, not only the true ones.
	pub := batch.Key.PublicKey
	n, e := pub.N, big.NewInt(int64(pub.E))
	one := big.NewInt(1)
	for i := range blinded {
		b, z := new(big.Int).SetBytes(blinded[i]), new(big.Int).SetBytes(blindSigs[i])
		for j, enc := range tokens {
			tok, _ := DecodeToken(enc)
			s := new(big.Int).SetBytes(tok.Signature)
			sInv := new(big.Int).ModInverse(s, n)
			if sInv == nil {
				t.Fatalf("token %d: signature not invertible", j)
			}
			r := new(big.Int).Mul(z, sInv)
			r.Mod(r, n)
			if new(big.Int).GCD(nil, nil, r, n).Cmp(one) != 0 {
				t.Fatalf("issuance %d, token %d: no blinding factor", i, j)
			}
			got := new(big.Int).Exp(r, e, n)
			got.Mul(got, new(big.Int).Exp(s, e, n))
			got.Mod(got, n)
			if got.Cmp(b) != 0 {
				t.Fatalf("issuance %d is not consistent with token %d: the TIS could tell them apart", i, j)
			}
		}
	}
}
