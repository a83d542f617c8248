package tis

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// backends are the databases every store test runs on: the SQLite default
// and a real PostgreSQL server of the test's own.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "" },
		"postgres": func(t *testing.T) string { return startPostgres(t) },
	}
}

// twoServers serves one TIS (one directory, one database) from two
// Servers, as two processes would, sharing the codes they mail.
func twoServers(t *testing.T, db string) (a, b *testTIS) { return twoServersTB(t, db, ServerOptions{}) }

func twoServersTB(t testing.TB, db string, opts ServerOptions) (a, b *testTIS) {
	t.Helper()
	opts.DB = db
	a = newTestTIS(t, opts)
	b = &testTIS{dir: a.dir, root: a.root, mail: a.mail}
	opts.Mailer = a.mail
	b.start(t, opts)
	return a, b
}

func TestTwoServersOneEmail(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a, b := twoServers(t, db(t))
			ctx := testCtx(t)
			servers := []*testTIS{a, b}
			// Ask for the code once; then 8 requests with it race on both
			// servers, four with one key pair, four with others.
			same := newTestNode(t)
			if _, err := a.client().EnrollCode(ctx, same.key, same.mkey, "Eve", "eve@example.org", ""); !errors.Is(err, ErrCodeSent) {
				t.Fatalf("first request: %v, want ErrCodeSent", err)
			}
			code, err := a.mail.Code(ctx, "eve@example.org")
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				e    *Enrollment
				err  error
				same bool
			}
			results := make(chan result, 8)
			var wg sync.WaitGroup
			for i := range 8 {
				n := same
				if i%2 == 1 {
					n = newTestNode(t)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					e, err := servers[i/4].client().EnrollCode(ctx, n.key, n.mkey, "Eve", "eve@example.org", code)
					results <- result{e, err, i%2 == 0}
				}()
			}
			wg.Wait()
			close(results)
			var serials []Serial
			for r := range results {
				switch {
				case r.err == nil:
					serials = append(serials, r.e.NodeCert.Serial)
				case !errors.Is(r.err, ErrBadCode):
					t.Errorf("enroll: %v", r.err)
				}
			}
			// Every winner got the one enrollment: one serial.
			if len(serials) == 0 {
				t.Fatal("nobody enrolled")
			}
			for _, s := range serials {
				if s != serials[0] {
					t.Fatalf("two certificates for one e-mail: %v", serials)
				}
			}
			var people, certs int
			if err := a.srv.store.Update(ctx, func(tx Tx) error {
				st := tx.(*sqlTx)
				if err := st.row(`SELECT COUNT(*) FROM persons`).Scan(&people); err != nil {
					return err
				}
				return st.row(`SELECT COUNT(*) FROM certs`).Scan(&certs)
			}); err != nil {
				t.Fatal(err)
			}
			if people != 1 || certs != 2 {
				t.Fatalf("%d people, %d certificates; want 1 and 2", people, certs)
			}
		})
	}
}

func TestTwoServersRevocationSequence(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a, b := twoServers(t, db(t))
			ctx := testCtx(t)
			const n = 12
			var serials []Serial
			for i := range n {
				p := newTestNode(t)
				e, err := []*testTIS{a, b}[i%2].client().Enroll(ctx, p.key, p.mkey, "P", fmt.Sprintf("p%d@example.org", i))
				if err != nil {
					t.Fatal(err)
				}
				serials = append(serials, e.NodeCert.Serial)
			}
			start, _ := a.srv.RevocationList()
			var wg sync.WaitGroup
			for i, s := range serials {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := []*testTIS{a, b}[i%2].srv.Revoke(s); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			// Each server answers the list it last saw for up to
			// revocationCacheTime; then both answer the last one.
			time.Sleep(revocationCacheTime + 100*time.Millisecond)
			for _, tt := range []*testTIS{a, b} {
				l, err := tt.client().FetchRevocations(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if l.Sequence != start.Sequence+n {
					t.Errorf("sequence %d after %d revocations from %d", l.Sequence, n, start.Sequence)
				}
				for _, s := range serials {
					if !l.Revoked(s) {
						t.Errorf("serial %s lost", s)
					}
				}
			}
		})
	}
}
