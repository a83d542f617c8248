package circuit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// tokenGate is an AdmitCircuit hook that accepts each token of its list
// once and records the tokens each relay saw.
type tokenGate struct {
	mu    sync.Mutex
	valid map[string]bool // token -> spent
	seen  [][]byte
}

func (g *tokenGate) admit(_ context.Context, _ peer.ID, token []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = append(g.seen, bytes.Clone(token))
	if token == nil {
		return fmt.Errorf("test gate: %w", ErrTokenMissing)
	}
	spent, ok := g.valid[string(token)]
	switch {
	case !ok:
		return fmt.Errorf("test gate: %w", ErrTokenInvalid)
	case spent:
		return fmt.Errorf("test gate: %w", ErrTokenSpent)
	}
	g.valid[string(token)] = true
	return nil
}

func (g *tokenGate) seenTokens() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.seen...)
}

// TestAdmissionToken: the guard sees the token the client puts in its
// CREATE and refuses a missing, reused or foreign one with its own
// DESTROY reason; the relays after it never see a token.
func TestAdmissionToken(t *testing.T) {
	gates := []*tokenGate{{valid: map[string]bool{"good": false, "good2": false}}, {}, {}}
	n := newTestNet(t, netOpts{})
	// Only the guard wants a token; the others record what they see.
	for i, r := range n.relays {
		g := gates[i]
		if i == 0 {
			r.opts.AdmitCircuit = g.admit
		} else {
			r.opts.AdmitCircuit = func(_ context.Context, _ peer.ID, token []byte) error {
				g.mu.Lock()
				defer g.mu.Unlock()
				g.seen = append(g.seen, bytes.Clone(token))
				return nil
			}
		}
	}
	errEmpty := errors.New("wallet empty")
	tests := []struct {
		name   string
		token  []byte
		tokErr error
		want   DestroyReason // DestroyNone: the build succeeds
	}{
		{"valid token", []byte("good"), nil, DestroyNone},
		{"no token", nil, nil, DestroyTokenMissing},
		{"reused token", []byte("good"), nil, DestroyTokenSpent},
		{"token of another TIS", []byte("foreign"), nil, DestroyTokenInvalid},
		{"second valid token", []byte("good2"), nil, DestroyNone},
		{"client out of tokens", nil, errEmpty, DestroyNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(n.chost, ClientOptions{Token: func(context.Context, peer.ID) ([]byte, error) { return tt.token, tt.tokErr }})
			t.Cleanup(func() { _ = c.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ci, err := c.Build(ctx, n.path(0, 1, 2))
			var be *BuildError
			switch {
			case tt.tokErr != nil:
				if !errors.Is(err, tt.tokErr) || !errors.As(err, &be) || be.Hop != 0 {
					t.Fatalf("build: %v, want %v at hop 0", err, tt.tokErr)
				}
			case tt.want == DestroyNone:
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				_ = ci.Close()
			default:
				var de *DestroyedError
				if !errors.As(err, &de) || de.Reason != tt.want || !errors.As(err, &be) || be.Hop != 0 {
					t.Fatalf("build: %v, want DESTROY(%v) at hop 0", err, tt.want)
				}
			}
		})
	}
	if got := len(gates[0].seenTokens()); got != len(tests)-1 {
		t.Errorf("the guard was asked %d times, want %d (never for a build without a token)", got, len(tests)-1)
	}
	for i, g := range gates[1:] {
		seen := g.seenTokens()
		if len(seen) != 2 {
			t.Errorf("relay %d was asked %d times, want 2 (the two built circuits)", i+1, len(seen))
		}
		for _, tok := range seen {
			if tok != nil {
				t.Errorf("relay %d saw token %q: only the guard may", i+1, tok)
			}
		}
	}
}

// TestCreateTokenRoundTrip: putCreate and getCreate agree, for every
// token size up to the cap, and a CREATE without a token has none.
func TestCreateTokenRoundTrip(t *testing.T) {
	hs := bytes.Repeat([]byte{7}, maxHandshake)
	for _, tok := range [][]byte{nil, {1}, bytes.Repeat([]byte{9}, 323), bytes.Repeat([]byte{5}, MaxTokenSize)} {
		cell := make([]byte, CellSize)
		if err := putCreate(cell, hs, tok); err != nil {
			t.Fatal(err)
		}
		gotHS, gotTok, err := getCreate(cell)
		if err != nil || !bytes.Equal(gotHS, hs) || !bytes.Equal(gotTok, tok) || (tok == nil) != (gotTok == nil) {
			t.Fatalf("token of %d bytes: got %d, %d bytes, %v", len(tok), len(gotHS), len(gotTok), err)
		}
	}
	if err := putCreate(make([]byte, CellSize), hs, make([]byte, MaxTokenSize+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized token: %v, want ErrMalformed", err)
	}
}

func FuzzGetCreate(f *testing.F) {
	for _, tok := range [][]byte{nil, []byte("token"), bytes.Repeat([]byte{1}, MaxTokenSize)} {
		cell := make([]byte, CellSize)
		if err := putCreate(cell, []byte("handshake"), tok); err != nil {
			f.Fatal(err)
		}
		f.Add(cell[:64])
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		cell := make([]byte, CellSize)
		copy(cell, head)
		hs, tok, err := getCreate(cell)
		if err != nil {
			return
		}
		if len(hs) == 0 || len(hs) > maxHandshake || len(tok) > MaxTokenSize {
			t.Fatalf("accepted handshake of %d, token of %d bytes", len(hs), len(tok))
		}
		out := make([]byte, CellSize)
		if err := putCreate(out, hs, tok); err != nil {
			t.Fatal(err)
		}
		hs2, tok2, err := getCreate(out)
		if err != nil || !bytes.Equal(hs, hs2) || !bytes.Equal(tok, tok2) {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}
