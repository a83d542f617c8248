package tis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pgDatabase creates a database of its own on the server of url and
// returns its URL.
func pgDatabase(t *testing.T, url, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(url, "/postgres?", "/"+name+"?", 1)
}

// TestSharedLimitsTwoServers: the global, per-address and per-domain
// limits hold for two servers on one PostgreSQL together, not each:
// requests alternating between them get the burst once, not twice.
func TestSharedLimitsTwoServers(t *testing.T) {
	url := startPostgres(t)
	now := time.Unix(1_800_000_000, 0)
	const burst = 3
	// A rate too small to refill during the test.
	const slow = 1e-6
	tests := []struct {
		name  string
		opts  ServerOptions
		email func(i int) string
	}{
		{"global", ServerOptions{EnrollRate: slow, EnrollBurst: burst}, func(i int) string { return fmt.Sprintf("p%d@d%d.example", i, i) }},
		{"address", ServerOptions{AddrRate: slow, AddrBurst: burst}, func(i int) string { return fmt.Sprintf("p%d@d%d.example", i, i) }},
		{"domain", ServerOptions{DomainRate: slow, DomainBurst: burst}, func(i int) string { return fmt.Sprintf("p%d@one.example", i) }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Now = func() time.Time { return now }
			a, b := twoServersTB(t, pgDatabase(t, url, fmt.Sprintf("limits%d", i)), opts)
			passed := 0
			for j := range 4 * burst {
				tt := []*testTIS{a, b}[j%2]
				c := tt.client()
				c.Now, c.Code = opts.Now, nil
				n := newTestNode(t)
				_, err := c.Enroll(context.Background(), n.key, n.mkey, "P", tc.email(j))
				switch {
				case errors.Is(err, ErrCodeSent):
					passed++
				case errors.Is(err, ErrRateLimited):
				default:
					t.Fatalf("request %d: %v", j, err)
				}
			}
			if passed != burst {
				t.Fatalf("%d requests passed the %s limit of burst %d on two servers", passed, tc.name, burst)
			}
		})
	}
}

// TestSharedLimiterOverflow: past maxKeys rows, keys without a bucket
// share one overflow bucket, so the table stops growing; buckets full
// again are swept.
func TestSharedLimiterOverflow(t *testing.T) {
	url := startPostgres(t)
	st, err := openPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	// Two tokens, an hour per token: buckets stay for two hours.
	l := &sharedLimiter{st: st, prefix: "t:", rate: 1.0 / 3600, burst: 2, maxKeys: 2}
	now := time.Unix(1_800_000_000, 0)
	take := func(key string, at time.Time, want bool) {
		t.Helper()
		got, err := l.allow(ctx, key, at)
		if err != nil || got != want {
			t.Fatalf("allow(%q) = %v, %v; want %v", key, got, err, want)
		}
	}
	take("a", now, true)
	take("a", now, true)
	take("a", now, false)
	take("b", now, true)
	// The next sweep counts two rows: new keys share the overflow bucket,
	// keys with a row keep theirs.
	later := now.Add(limitSweepEvery)
	take("c", later, true)
	take("d", later, true)
	take("e", later, false)
	take("a", later, false)
	take("b", later, true)
	rows := func() int {
		var n int
		if err := st.db.QueryRow(`SELECT count(*) FROM limits WHERE k LIKE 't:%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 3 { // a, b and the overflow bucket
		t.Fatalf("%d rows, want 3", n)
	}
	// Long after, every bucket is full again and swept.
	take("f", later.Add(3*time.Hour), true)
	if n := rows(); n != 1 {
		t.Fatalf("%d rows after the sweep, want 1 (f)", n)
	}
}

// TestSharedLimitsInOrder: a request refused by its address's limit takes
// nothing from the global limit after it (one statement takes both), so
// one address's flood does not lock everyone else out.
func TestSharedLimitsInOrder(t *testing.T) {
	st, err := openPostgres(context.Background(), startPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	addr := &sharedLimiter{st: st, prefix: "addr:", rate: 1e-6, burst: 1, maxKeys: 100}
	global := &sharedLimiter{st: st, prefix: "enroll:", rate: 1e-6, burst: 2, maxKeys: 1}
	now := time.Unix(1_800_000_000, 0)
	for i, tc := range []struct {
		addr, refused string
	}{
		{"x", ""},
		{"x", "client address"},
		{"x", "client address"},
		{"x", "client address"},
		{"y", ""},
		{"z", "all clients"},
	} {
		err := allowAll(context.Background(), now, limitKey{addr, tc.addr, "client address"}, limitKey{global, "", "all clients"})
		switch {
		case tc.refused == "" && err != nil:
			t.Fatalf("request %d from %s: %v", i, tc.addr, err)
		case tc.refused != "" && (!errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), tc.refused)):
			t.Fatalf("request %d from %s: %v, want refused by %s", i, tc.addr, err, tc.refused)
		}
	}
}

// TestSharedLimiterLease: two servers leasing tokens of the global limit
// spend the burst once between them, not more; a request refused by its
// address's limit gives its leased token back.
func TestSharedLimiterLease(t *testing.T) {
	st, err := openPostgres(context.Background(), startPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const burst = 10
	servers := []*sharedLimiter{
		{st: st, prefix: "g:", rate: 1e-6, burst: burst, maxKeys: 10, lease: 4},
		{st: st, prefix: "g:", rate: 1e-6, burst: burst, maxKeys: 10, lease: 4},
	}
	addr := &sharedLimiter{st: st, prefix: "a:", rate: 1e-6, burst: 1, maxKeys: 100}
	// Server 0 leases 4 and spends one; "x" is then refused by its address
	// limit, which must not spend a leased token.
	if err := allowAll(ctx, now, limitKey{addr, "x", "address"}, limitKey{servers[0], "", "global"}); err != nil {
		t.Fatal(err)
	}
	if err := allowAll(ctx, now, limitKey{addr, "x", "address"}, limitKey{servers[0], "", "global"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second from x: %v", err)
	}
	passed := 1
	for i := range 40 {
		ok, err := servers[i%2].allow(ctx, "", now)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			passed++
		}
	}
	if passed != burst {
		t.Fatalf("%d passed the global limit of burst %d on two leasing servers", passed, burst)
	}
	// Leases end: a token leased long ago is not spent.
	servers[0].addLeased(3, now)
	if servers[0].spendLeased(now.Add(leaseTime)) {
		t.Fatal("spent a token leased a lease time ago")
	}
}
