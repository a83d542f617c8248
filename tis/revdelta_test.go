package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// signedDelta signs a delta of serials on the list of sequence base.
func signedDelta(t testing.TB, root ed25519.PrivateKey, seq, base uint64, serials []Serial) []byte {
	t.Helper()
	now := time.Unix(1_800_000_100, 0).UTC()
	d := &RevocationList{Sequence: seq, Base: base, IssuedAt: now, NextUpdate: now.Add(time.Hour), Serials: serials}
	if err := d.sign(root); err != nil {
		t.Fatal(err)
	}
	return mustEncode(t, d.Encode)
}

// TestRevocationDelta: a delta as the last page adds its serials to the
// pages before it, with its sequence and times; a delta on other pages,
// alone, in the middle or of another TIS is refused.
func TestRevocationDelta(t *testing.T) {
	root := newRootKey(t)
	pub := root.Public().(ed25519.PublicKey)
	serials := manySerials(MaxRevoked + 5)
	_, pages := signedPages(t, root, 9, serials)
	added := []Serial{{0xee}, serials[3]} // one new, one on the pages already
	delta := signedDelta(t, root, 12, 9, []Serial{added[1], added[0]}[1:])
	both := signedDelta(t, root, 12, 9, []Serial{serials[3], {0xee}})
	tests := []struct {
		name  string
		pages [][]byte
		want  error
	}{
		{"pages and delta", append(pages[:2:2], delta), nil},
		{"delta repeating a page's serial", append(pages[:2:2], both), nil},
		{"delta on another list", append(pages[:2:2], signedDelta(t, root, 12, 8, added[:1])), ErrMalformed},
		{"delta alone", [][]byte{delta}, ErrMalformed},
		{"delta in the middle", [][]byte{pages[0], delta, pages[1]}, ErrMalformed},
		{"foreign delta", append(pages[:2:2], signedDelta(t, newRootKey(t), 12, 9, added[:1])), ErrUnknownIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := AssembleRevocationList(tc.pages, pub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if l.Sequence != 12 || l.BaseSequence() != 9 || l.PageCount() != 2 || len(l.Serials) != len(serials)+1 ||
				!l.Revoked(Serial{0xee}) || !l.Revoked(serials[len(serials)-1]) {
				t.Fatalf("assembled: %v (base %d)", l, l.BaseSequence())
			}
			again, err := l.EncodePages()
			if err != nil || len(again) != 3 || !bytes.Equal(again[2], tc.pages[2]) {
				t.Fatalf("EncodePages: %d pages, %v", len(again), err)
			}
		})
	}
	// A newer delta joins the pages held, without them.
	l, err := AssembleRevocationList(append(pages[:2:2], delta), pub)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := DecodeRevocationList(signedDelta(t, root, 13, 9, []Serial{{0xee}, {0xef}}))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := l.WithDelta(newer)
	if err != nil || l2.Sequence != 13 || !l2.Revoked(Serial{0xef}) || len(l2.Serials) != len(serials)+2 {
		t.Fatalf("WithDelta: %v, %v", l2, err)
	}
	other, _ := DecodeRevocationList(signedDelta(t, root, 13, 10, nil))
	if _, err := l.WithDelta(other); !errors.Is(err, ErrMalformed) {
		t.Fatalf("WithDelta on other pages: %v", err)
	}
	v := RevocationValidator{Root: pub}
	if err := v.Validate(RevocationDeltaKey(pub), delta); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(RevocationPageKey(pub, 2), delta); err == nil {
		t.Fatal("a delta validated under a page's key")
	}
	if err := v.Validate(RevocationDeltaKey(pub), pages[1]); err == nil {
		t.Fatal("a page validated under the delta's key")
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// putStore is a RecordStore over a map that counts puts.
type putStore struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts int
}

func (s *putStore) PutRecord(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	s.puts++
	return nil
}

func (s *putStore) GetRecord(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[key]; ok {
		return b, nil
	}
	return nil, errors.New("not found")
}

// TestRevocationDeltaSignsOnePage: with over 100k revoked serials (4
// pages), one more revocation signs one page (the delta), not every page
// (as it did before deltas); so does the refresh at half the list's life.
// A client holding the list fetches the delta alone, an agent puts only
// the delta into the DHT and reads it alone back, and every serial stays
// revoked. After revocationRebase every page is signed afresh.
func TestRevocationDeltaSignsOnePage(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) { testRevocationDeltaSignsOnePage(t, db(t)) })
	}
}

func testRevocationDeltaSignsOnePage(t *testing.T, db string) {
	const revoked = 100_000
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	tt := newTestTIS(t, ServerOptions{DB: db, Now: clock})
	// 100k serials take a while under -race.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	var people []*Enrollment
	for i := range 3 {
		n := newTestNode(t)
		c := tt.client()
		c.Now = clock
		e, err := c.Enroll(ctx, n.key, n.mkey, "Erin", fmt.Sprintf("erin%d@example.org", i))
		if err != nil {
			t.Fatal(err)
		}
		people = append(people, e)
	}
	fillRevoked(t, ctx, tt.srv, revoked, now.Add(30*24*time.Hour))
	signs := func(what string, want int64, f func()) {
		t.Helper()
		before := tt.srv.pagesSigned.Load()
		f()
		if got := tt.srv.pagesSigned.Load() - before; got != want {
			t.Fatalf("%s signed %d pages, want %d", what, got, want)
		}
	}
	revoke := func(e *Enrollment) {
		if err := tt.srv.Revoke(e.NodeCert.Serial); err != nil {
			t.Fatal(err)
		}
	}
	// The first revocation past a page signs every page (4) and a delta.
	signs("the first revocation", 5, func() { revoke(people[0]) })
	signs("one more revocation", 1, func() { revoke(people[1]) })
	advance(DefaultRevocationLifetime/2 + time.Minute)
	signs("the refresh", 1, func() { tt.srv.RevocationList() })

	client := tt.client()
	client.Now = clock
	held, err := client.FetchRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if held.PageCount() != 4 || len(held.Serials) != revoked+2 || !held.Revoked(people[1].NodeCert.Serial) {
		t.Fatalf("fetched %v", held)
	}
	// The agent's DHT copy: every record at first, then the delta alone.
	agent := &Agent{opts: AgentOptions{Root: tt.root}, revs: NewRevocationCache(tt.root)}
	store := &putStore{m: map[string][]byte{}}
	agent.revs.Offer(held)
	if err := agent.putRevocations(ctx, store, held, false); err != nil || store.puts != 5 {
		t.Fatalf("first put: %d records, %v", store.puts, err)
	}

	revoke(people[2])
	count := &countingTransport{}
	client.HTTP = &http.Client{Transport: count}
	l, err := client.FetchRevocationsSince(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	if count.n.Load() != 1 || len(l.Serials) != revoked+3 || !l.Revoked(people[2].NodeCert.Serial) || !l.Revoked(people[0].NodeCert.Serial) {
		t.Fatalf("fetch since: %d requests, %v", count.n.Load(), l)
	}
	store.puts = 0
	if err := agent.putRevocations(ctx, store, l, false); err != nil || store.puts != 1 {
		t.Fatalf("put after one revocation: %d records, %v", store.puts, err)
	}
	// Another node holding the older list reads the delta back alone.
	reader := &Agent{opts: AgentOptions{Root: tt.root}, revs: NewRevocationCache(tt.root)}
	reader.revs.Offer(held)
	if ok, err := reader.getRevocationDelta(ctx, store); !ok || err != nil || !reader.revs.List().Revoked(people[2].NodeCert.Serial) {
		t.Fatalf("delta from the DHT: %v, %v", ok, err)
	}
	pages, err := GetRevocationPages(ctx, store, tt.root)
	if err != nil || len(pages) != 5 {
		t.Fatalf("pages from the DHT: %d, %v", len(pages), err)
	}
	if ok, err := NewRevocationCache(tt.root).Update(pages...); !ok || err != nil {
		t.Fatalf("pages from the DHT: %v", err)
	}

	advance(revocationRebase)
	signs("the refresh after the rebase time", 5, func() { tt.srv.RevocationList() })
	if l, _ := tt.srv.RevocationList(); len(l.Serials) != revoked+3 || len(l.Delta().Serials) != 0 {
		t.Fatalf("rebased: %v", l)
	}
}

// TestTwoServersRevocationDeltas: two servers of one database revoke in
// turn on a list of two pages: each signs only the delta, on the pages
// the other stored, the sequence goes up by one each time, and both
// serve every revoked serial.
func TestTwoServersRevocationDeltas(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a, b := twoServers(t, db(t))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t.Cleanup(cancel)
			var serials []Serial
			for i := range 4 {
				n := newTestNode(t)
				e, err := a.client().Enroll(ctx, n.key, n.mkey, "Erin", fmt.Sprintf("erin%d@example.org", i))
				if err != nil {
					t.Fatal(err)
				}
				serials = append(serials, e.NodeCert.Serial)
			}
			fillRevoked(t, ctx, a.srv, MaxRevoked+10, time.Now().Add(time.Hour))
			var seq uint64
			for i, s := range serials {
				srv := []*testTIS{a, b}[i%2]
				before := srv.srv.pagesSigned.Load()
				if err := srv.srv.Revoke(s); err != nil {
					t.Fatal(err)
				}
				l, _ := srv.srv.RevocationList()
				if signed := srv.srv.pagesSigned.Load() - before; (i == 0 && signed != 3) || (i > 0 && signed != 1) {
					t.Fatalf("revocation %d signed %d pages", i, signed)
				}
				if i > 0 && l.Sequence != seq+1 {
					t.Fatalf("revocation %d: sequence %d after %d", i, l.Sequence, seq)
				}
				seq = l.Sequence
			}
			for _, srv := range []*testTIS{a, b} {
				// A server answers the list it read for up to a second
				// (revocationCacheTime) before it reads the other's.
				var l *RevocationList
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					var err error
					if l, err = srv.client().FetchRevocations(ctx); err != nil {
						t.Fatal(err)
					}
					if l.Sequence >= seq || time.Now().After(deadline) {
						break
					}
				}
				if l.Sequence != seq || len(l.Serials) != MaxRevoked+10+len(serials) || !l.Revoked(serials[3]) || !l.Revoked(serials[0]) {
					t.Fatalf("served %v, want sequence %d", l, seq)
				}
			}
		})
	}
}

// fillRevoked adds n revoked serials of made-up people to the store of
// srv, in bulk, behind its back, expiring at expires.
func fillRevoked(t testing.TB, ctx context.Context, srv *Server, n int, expires time.Time) {
	t.Helper()
	st := srv.store.(*sqlStore)
	fill := fmt.Sprintf(`WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < %d)
		INSERT INTO certs (serial, owner, expires, revoked) SELECT printf('%%032x', (i << 20) | 7), 'made-up', %d, 1 FROM c`, n-1, expires.Unix())
	if st.postgres {
		fill = fmt.Sprintf(`INSERT INTO certs (serial, owner, expires, revoked)
			SELECT lpad(to_hex((i::bigint << 20) | 7), 32, '0'), 'made-up', %d, 1 FROM generate_series(0, %d) AS i`, expires.Unix(), n-1)
	}
	if err := st.Update(ctx, func(tx Tx) error {
		_, err := tx.(*sqlTx).tx.ExecContext(ctx, fill)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
