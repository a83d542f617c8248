package token

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestGuardRedeem: a guard fetches the keys itself, accepts a token of
// its TIS made for it once, and refuses a reused one and one of another
// TIS.
func TestGuardRedeem(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	other := newFixture(t, IssuerOptions{})
	toks, _ := issue(t, f.client(f.tis.Enroll(t, "alice")), 2)
	foreign, _ := issue(t, other.client(other.tis.Enroll(t, "mallory")), 1)
	g := NewGuard(f.tis.URL, f.tis.Root, testGuard, GuardOptions{Now: f.clock.Now})
	t.Cleanup(func() { _ = g.Close() })
	tests := []struct {
		name  string
		token []byte
		want  error
	}{
		{"valid", toks[0], nil},
		{"reused", toks[0], ErrSpent},
		{"another TIS's", foreign[0], ErrUnknownKey},
		{"garbage", []byte("not a token"), ErrMalformed},
		{"second valid", toks[1], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := g.Redeem(ctx(t), tt.token)
			if (tt.want == nil && err != nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Redeem: %v, want %v", err, tt.want)
			}
		})
	}
	if keys, spent := g.Keys(); keys == 0 || spent != 2 {
		t.Fatalf("guard holds %d keys, %d spent; want some keys and 2 spent", keys, spent)
	}
}

// TestGuardUnknownKeyFetchBounded: tokens of unknown keys make the guard
// fetch the keys at most once per MinKeyFetch, however many come.
func TestGuardUnknownKeyFetchBounded(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	other := newFixture(t, IssuerOptions{})
	foreign, _ := issue(t, other.client(other.tis.Enroll(t, "mallory")), 1)
	var fetches atomic.Int32
	g := &Guard{r: NewRedeemer(f.tis.Root, testGuard, RedeemerOptions{}), opts: GuardOptions{Now: f.clock.Now}.withDefaults()}
	g.fetch = func(ctx context.Context) ([]*Key, error) {
		fetches.Add(1)
		return FetchKeys(ctx, nil, f.tis.URL, f.tis.Root)
	}
	for range 20 {
		if err := g.Redeem(ctx(t), foreign[0]); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Redeem: %v, want ErrUnknownKey", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 unknown tokens, want 1", n)
	}
	f.clock.Add(DefaultMinKeyFetch + time.Second)
	_ = g.Redeem(ctx(t), foreign[0])
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after MinKeyFetch, want 2", n)
	}
}
