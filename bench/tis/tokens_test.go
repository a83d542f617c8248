package tisbench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
)

// TestTokensTwoProcesses: two real tis serve processes on one PostgreSQL
// issue admission tokens to one enrollment, asked of both in turn: they
// grant the budget of a period once in all, signed with one key, so a
// guard that fetches the keys from either process accepts every token.
func TestTokensTwoProcesses(t *testing.T) {
	c := startCluster(t, twoPostgres)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, mkey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cl := tis.NewClient(c.urls[0], c.root)
	cl.Code = c.codes.code
	e, err := cl.Enroll(ctx, key, mkey, "Token Person", "tokens@example.org")
	if err != nil {
		t.Fatal(err)
	}
	guardKey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := peer.IDFromPrivateKey(guardKey)
	if err != nil {
		t.Fatal(err)
	}
	var toks [][]byte
	for i := 0; ; i++ {
		b, err := token.NewClient(c.urls[i%2], c.root, key, e.NodeCert).Issue(ctx, guard, token.MaxBatch)
		if errors.Is(err, token.ErrLimit) {
			break
		}
		if err != nil {
			t.Fatalf("issue at process %d: %v", i%2, err)
		}
		for _, tok := range b.Tokens {
			enc, err := tok.Encode()
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, enc)
		}
		if i > 4*token.DefaultTokensPerPeriod/token.MaxBatch {
			t.Fatalf("still issuing after %d tokens", len(toks))
		}
	}
	if len(toks) != token.DefaultTokensPerPeriod {
		t.Fatalf("two processes issued %d tokens to one enrollment, want the budget %d", len(toks), token.DefaultTokensPerPeriod)
	}
	for i, u := range c.urls {
		g := token.NewGuard(u, c.root, guard, token.GuardOptions{})
		t.Cleanup(func() { g.Close() })
		for j, tok := range toks {
			if err := g.Redeem(ctx, tok); err != nil {
				t.Fatalf("guard fed by process %d, token %d: %v", i, j, err)
			}
		}
	}
}
