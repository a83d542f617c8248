package token

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pikcio/pikcio/internal/pgtest"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

// TestTwoServersShareTokens: two servers of one TIS (one directory, one
// database: the SQLite file, or PostgreSQL as two processes would share
// it) sign a period with one key and count one budget. An enrollment
// asking both at once gets the budget once, not twice; a guard that
// fetches the keys from either server accepts the tokens of both; a
// token of another TIS is still refused.
func TestTwoServersShareTokens(t *testing.T) {
	for _, tc := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const limit = 20
			clk := newClock()
			dir := filepath.Join(t.TempDir(), "tis")
			if _, err := tis.Init(dir); err != nil {
				t.Fatal(err)
			}
			db := tc.db(t)
			servers := make([]*tistest.TIS, 2)
			for i := range servers {
				servers[i] = tistest.Serve(t, dir, tis.ServerOptions{DB: db})
				if _, err := Mount(servers[i].Server, dir, IssuerOptions{TokensPerPeriod: limit, Now: clk.Now}); err != nil {
					t.Fatal(err)
				}
			}
			alice := servers[0].Enroll(t, "alice")

			// Eight requests of 8 at once, alternating between the servers.
			var mu sync.Mutex
			var toks [][]byte
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := &fixture{tis: servers[i%2], clock: clk}
					b, err := f.client(alice).Issue(ctx(t), testGuard, 8)
					if errors.Is(err, ErrLimit) {
						return
					}
					if err != nil {
						t.Errorf("Issue at server %d: %v", i%2, err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					for _, tok := range b.Tokens {
						enc, err := tok.Encode()
						if err != nil {
							t.Error(err)
							return
						}
						toks = append(toks, enc)
					}
				}()
			}
			wg.Wait()
			if len(toks) != limit {
				t.Fatalf("two servers issued %d tokens to one enrollment, want the budget %d", len(toks), limit)
			}

			other := newFixture(t, IssuerOptions{})
			foreign, _ := issue(t, other.client(other.tis.Enroll(t, "mallory")), 1)
			for i, s := range servers {
				g := NewGuard(s.URL, s.Root, testGuard, GuardOptions{Now: clk.Now})
				t.Cleanup(func() { g.Close() })
				for j, tok := range toks {
					if err := g.Redeem(ctx(t), tok); err != nil {
						t.Fatalf("guard fed by server %d, token %d: %v", i, j, err)
					}
				}
				if err := g.Redeem(ctx(t), foreign[0]); !errors.Is(err, ErrUnknownKey) {
					t.Fatalf("guard fed by server %d, another TIS's token: %v, want ErrUnknownKey", i, err)
				}
			}
		})
	}
}
