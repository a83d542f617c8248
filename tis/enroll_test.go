package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/wire"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEnrollEndToEnd(t *testing.T) {
	boots := []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRYfqRWzNvcpZknfzK5o9MYmDHXcugazLmZ3A5mVXmGY"}
	tt := newTestTIS(t, ServerOptions{Bootstraps: boots, CertLifetime: 48 * time.Hour})
	n := newTestNode(t)
	ctx := testCtx(t)

	e, err := tt.client().Enroll(ctx, n.key, n.mkey, "  Alice   Liddell ", "Alice@Example.ORG ")
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	now := time.Now()
	if err := VerifyNodeCert(e.NodeCert, tt.root, n.id, now, nil); err != nil {
		t.Fatalf("VerifyNodeCert: %v", err)
	}
	if err := VerifyMatryoshkaCert(e.MatryoshkaCert, tt.root, n.mkey.Public().(ed25519.PublicKey), now, nil); err != nil {
		t.Fatalf("VerifyMatryoshkaCert: %v", err)
	}
	// certTimes moves each end back by up to a quarter of the lifetime.
	if got := e.NodeCert.Expires.Sub(e.NodeCert.IssuedAt); got <= 36*time.Hour || got > 60*time.Hour {
		t.Errorf("lifetime %s, want 48h ± 12h", got)
	}
	if e.NodeCert.IssuedAt.After(now) || !e.NodeCert.IssuedAt.Equal(e.NodeCert.IssuedAt.Truncate(TimeGranularity)) {
		t.Errorf("issue time %s not rounded down to %s", e.NodeCert.IssuedAt, TimeGranularity)
	}
	if len(e.Bootstraps) != 1 || e.Bootstraps[0] != boots[0] {
		t.Errorf("bootstraps %v, want %v", e.Bootstraps, boots)
	}
	// The two certificates of one person share no identifier.
	if e.NodeCert.ID == e.MatryoshkaCert.ID || e.NodeCert.Serial == e.MatryoshkaCert.Serial {
		t.Fatal("node and matryoshka certificates share an ID or serial")
	}
	nb, _ := e.NodeCert.Encode()
	mb, _ := e.MatryoshkaCert.Encode()
	for _, id := range [][]byte{e.MatryoshkaCert.ID[:], e.MatryoshkaCert.Serial[:]} {
		if bytes.Contains(nb, id) {
			t.Error("node certificate carries a matryoshka identifier")
		}
	}
	for _, id := range [][]byte{e.NodeCert.ID[:], e.NodeCert.Serial[:]} {
		if bytes.Contains(mb, id) {
			t.Error("matryoshka certificate carries a node identifier")
		}
	}

	// The node stores its enrollment and Matryoshka key, 0600.
	nodeDir := filepath.Join(t.TempDir(), "node")
	mk, err := LoadOrCreateMatryoshkaKey(nodeDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveEnrollment(nodeDir, e); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("SaveEnrollment with another matryoshka key: %v, want ErrWrongKey", err)
	}
	if err := os.WriteFile(filepath.Join(nodeDir, MatryoshkaKeyFile), n.mkey, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = mk
	if err := SaveEnrollment(nodeDir, e); err != nil {
		t.Fatalf("SaveEnrollment: %v", err)
	}
	le, lk, err := LoadEnrollment(nodeDir)
	if err != nil {
		t.Fatalf("LoadEnrollment: %v", err)
	}
	if !lk.Equal(n.mkey) || le.NodeCert.Serial != e.NodeCert.Serial || le.MatryoshkaCert.Serial != e.MatryoshkaCert.Serial || len(le.Bootstraps) != 1 {
		t.Fatal("loaded enrollment differs")
	}
	if err := le.Verify(tt.root, n.pub(t), n.mkey.Public().(ed25519.PublicKey), now); err != nil {
		t.Fatalf("loaded enrollment: %v", err)
	}
	for _, f := range []string{EnrollmentFile, MatryoshkaKeyFile} {
		fi, err := os.Stat(filepath.Join(nodeDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, fi.Mode().Perm())
		}
	}
}

func TestEnrollDuplicates(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	ctx := testCtx(t)
	c := tt.client()
	alice := newTestNode(t)
	first, err := c.Enroll(ctx, alice.key, alice.mkey, "Alice", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	mallory := newTestNode(t)
	// Mallory does not get Alice's mail: she can only guess the code.
	guess := tt.client()
	guess.Code = func(context.Context, string) (string, error) { return "12345678", nil }

	tests := []struct {
		name        string
		node        testNode
		nameProp    string
		email       string
		wantErr     error
		wantReissue bool
	}{
		{"same e-mail, other keys", mallory, "Alice", "alice@example.org", ErrBadCode, false},
		{"same e-mail differently typed, other keys", mallory, "Alice", " ALICE@example.org", ErrBadCode, false},
		{"same e-mail and keys, other name", alice, "Alice B", "alice@example.org", ErrBadCode, false},
		{"same keys, other e-mail", alice, "Alice", "alice2@example.org", ErrAlreadyEnrolled, false},
		{"same person, same keys: re-issue", alice, " Alice ", "Alice@Example.org", nil, true},
		{"other person", mallory, "Mallory", "mallory@example.org", nil, false},
		{"bad e-mail", newTestNode(t), "Bob", "bob.example.org", ErrBadProperties, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := c
			if errors.Is(tc.wantErr, ErrBadCode) {
				cl = guess
			}
			e, err := cl.Enroll(ctx, tc.node.key, tc.node.mkey, tc.nameProp, tc.email)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Enroll: %v, want %v", err, tc.wantErr)
			}
			if tc.wantReissue {
				if e.NodeCert.ID != first.NodeCert.ID || e.MatryoshkaCert.ID != first.MatryoshkaCert.ID {
					t.Error("re-issued certificates carry other IDs")
				}
				if e.NodeCert.Serial == first.NodeCert.Serial {
					t.Error("re-issued certificate has the old serial")
				}
			}
			if tc.wantErr == nil && !tc.wantReissue && e.NodeCert.ID == first.NodeCert.ID {
				t.Error("another person got the same node ID")
			}
		})
	}
}

func TestStateHoldsNoPersonalData(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	ctx := testCtx(t)
	people := [][2]string{{"Zoë Ångström", "zoe.angstrom@example.org"}, {"Bob Builder", "bob@builder.example"}}
	var serial Serial
	for _, p := range people {
		n := newTestNode(t)
		e, err := tt.client().Enroll(ctx, n.key, n.mkey, p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		serial = e.NodeCert.Serial
	}
	if err := tt.srv.Revoke(serial); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(tt.dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tt.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("TIS dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(tt.dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f.Name(), info.Mode().Perm())
		}
		low := strings.ToLower(string(b))
		for _, p := range people {
			for _, s := range append([]string{p[1]}, append(strings.Fields(p[0]), strings.Split(p[1], "@")...)...) {
				if strings.Contains(low, strings.ToLower(s)) {
					t.Errorf("%s contains %q", f.Name(), s)
				}
			}
		}
	}
}

func TestEnrollRefusesBadRequests(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	ctx := testCtx(t)
	n, other := newTestNode(t), newTestNode(t)
	now := time.Now()

	build := func(t *testing.T, mutate func(q *EnrollRequest)) []byte {
		q, err := NewEnrollRequest(tt.root, n.key, n.mkey, "Carol", "carol@example.org", now)
		if err != nil {
			t.Fatal(err)
		}
		mutate(q)
		b, err := q.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	resign := func(q *EnrollRequest, nodeOK, matrOK bool) {
		body, _ := q.body()
		nk, mk := n.key, n.mkey
		if !nodeOK {
			nk = other.key
		}
		if !matrOK {
			mk = other.mkey
		}
		q.NodeSig, _ = nk.Sign(wire.Signed(enrollNodeContext, body))
		q.MatryoshkaSig = ed25519.Sign(mk, wire.Signed(enrollMatryoshkaContext, body))
	}
	foreign := newTestTIS(t, ServerOptions{})

	tests := []struct {
		name   string
		mutate func(q *EnrollRequest)
		want   error
	}{
		{"node proof by another key", func(q *EnrollRequest) { resign(q, false, true) }, ErrProofOfPossession},
		{"matryoshka proof by another key", func(q *EnrollRequest) { resign(q, true, false) }, ErrProofOfPossession},
		{"someone else's node key", func(q *EnrollRequest) { q.NodeKey = other.pub(t); resign(q, true, true) }, ErrProofOfPossession},
		{"swapped proofs", func(q *EnrollRequest) { q.NodeSig, q.MatryoshkaSig = q.MatryoshkaSig, q.NodeSig }, ErrProofOfPossession},
		{"e-mail changed after signing", func(q *EnrollRequest) { q.Email = "mallory@example.org" }, ErrProofOfPossession},
		{"old timestamp", func(q *EnrollRequest) { q.Time = now.Add(-time.Hour).Truncate(time.Second); resign(q, true, true) }, ErrStaleRequest},
		{"for another TIS", func(q *EnrollRequest) { q.Root = RootKeyID(foreign.root); resign(q, true, true) }, ErrUnknownIssuer},
		{"same key twice", func(q *EnrollRequest) {
			q.MatryoshkaKey = q.NodeKey
			body, _ := q.body()
			q.NodeSig, _ = n.key.Sign(wire.Signed(enrollNodeContext, body))
			q.MatryoshkaSig, _ = n.key.Sign(wire.Signed(enrollMatryoshkaContext, body))
		}, ErrMalformed},
		{"empty name", func(q *EnrollRequest) { q.Name = " \t"; resign(q, true, true) }, ErrBadProperties},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := build(t, tc.mutate)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, tt.url+PathEnroll, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tt.client().do(req, MaxEnrollmentSize)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("garbage body", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tt.url+PathEnroll, strings.NewReader("hello"))
		if _, err := tt.client().do(req, MaxEnrollmentSize); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tt.url+PathEnroll, bytes.NewReader(make([]byte, MaxRequestBody+1)))
		if _, err := tt.client().do(req, MaxEnrollmentSize); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
	// None of those enrolled anyone: the genuine request still works.
	if _, err := tt.client().Enroll(ctx, n.key, n.mkey, "Carol", "carol@example.org"); err != nil {
		t.Fatalf("genuine enrollment after refusals: %v", err)
	}
	// A client pinning another root refuses the answer.
	if _, err := Enroll(ctx, tt.url, foreign.root, other.key, other.mkey, "Dave", "dave@example.org"); !errors.Is(err, ErrUnknownIssuer) {
		t.Fatalf("enroll with the wrong pinned key: %v, want ErrUnknownIssuer", err)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	ctx := testCtx(t)
	alice, bob := newTestNode(t), newTestNode(t)
	ea, err := tt.client().Enroll(ctx, alice.key, alice.mkey, "Alice", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	eb, err := tt.client().Enroll(ctx, bob.key, bob.mkey, "Bob", "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.srv.Revoke(eb.NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	before, err := tt.client().FetchRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tt.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	carol := newTestNode(t)
	q, err := NewEnrollRequest(tt.root, carol.key, carol.mkey, "Carol", "carol@example.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.srv.enroll(context.Background(), q); !errors.Is(err, ErrClosed) {
		t.Fatalf("enroll on a closed server: %v, want ErrClosed", err)
	}

	tt.start(t, ServerOptions{})
	after, err := tt.client().FetchRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Sequence != before.Sequence || !after.Revoked(eb.NodeCert.Serial) {
		t.Fatalf("revocations after restart: %v, before %v", after, before)
	}
	// Same e-mail, other keys: still refused. Same person: same IDs.
	if _, err := tt.client().Enroll(ctx, bob.key, alice.mkey, "Alice", "alice@example.org"); !errors.Is(err, ErrAlreadyEnrolled) {
		t.Fatalf("duplicate after restart: %v", err)
	}
	again, err := tt.client().Enroll(ctx, alice.key, alice.mkey, "Alice", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if again.NodeCert.ID != ea.NodeCert.ID || again.MatryoshkaCert.ID != ea.MatryoshkaCert.ID {
		t.Fatal("IDs changed across restart")
	}
	// A revoked person is not enrolled again.
	if _, err := tt.client().Enroll(ctx, bob.key, bob.mkey, "Bob", "bob@example.org"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("revoked person re-enrolling: %v, want ErrBlocked", err)
	}
	// Serials issued before the restart can be revoked after it.
	if err := tt.srv.Revoke(ea.MatryoshkaCert.Serial); err != nil {
		t.Fatalf("revoke a serial issued before restart: %v", err)
	}
	if err := tt.srv.Revoke(Serial{1}); !errors.Is(err, ErrUnknownSerial) {
		t.Fatalf("revoke unknown serial: %v", err)
	}
}

func TestListenPolicy(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	if _, err := tt.srv.Listen("127.0.0.1:0"); err == nil {
		t.Fatal("second Listen succeeded")
	}
	tt.srv.Close()
	srv, err := NewServer(tt.dir, ServerOptions{OpenEnrollment: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// Refused before any socket is opened.
	if _, err := srv.Listen("192.0.2.1:0"); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("plain HTTP on a public address: %v, want ErrNotLoopback", err)
	}
	if _, err := NewServer(tt.dir, ServerOptions{Bootstraps: []string{"not a multiaddr"}}); err == nil {
		t.Fatal("bad bootstrap accepted")
	}
	for addr, want := range map[string]string{
		"127.0.0.1:7070":       "http://127.0.0.1:7070",
		"localhost:7070":       "http://localhost:7070",
		"[::1]:7070":           "http://[::1]:7070",
		"tis.example.org:443":  "https://tis.example.org:443",
		"https://tis.example/": "https://tis.example",
	} {
		if got := BaseURL(addr); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestRootKeyEndpoint(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, tt.url+PathRootKey, nil)
	b, err := tt.client().do(req, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(string(b))
	if err != nil || !k.Equal(tt.root) {
		t.Fatalf("root key endpoint: %q %v", b, err)
	}
}

func TestEnrollLimits(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		// Two requests per enrollment: one asks for the code.
		tt := newTestTIS(t, ServerOptions{EnrollRate: 0.001, EnrollBurst: 4})
		ctx := testCtx(t)
		for i, want := range []error{nil, nil, ErrRateLimited} {
			n := newTestNode(t)
			_, err := tt.client().Enroll(ctx, n.key, n.mkey, "P", fmt.Sprintf("p%d@example.org", i))
			if !errors.Is(err, want) {
				t.Fatalf("request %d: %v, want %v", i, err, want)
			}
		}
	})
	t.Run("per client address, behind a trusted proxy", func(t *testing.T) {
		tt := newTestTIS(t, ServerOptions{AddrRate: 0.001, AddrBurst: 4, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		ctx := testCtx(t)
		from := func(addr string) *Client {
			c := tt.client()
			c.HTTP.Transport = forwardedFor{addr}
			return c
		}
		for i, want := range []error{nil, nil, ErrRateLimited} {
			n := newTestNode(t)
			if _, err := from("198.51.100.7").Enroll(ctx, n.key, n.mkey, "P", fmt.Sprintf("p%d@example.org", i)); !errors.Is(err, want) {
				t.Fatalf("request %d: %v, want %v", i, err, want)
			}
		}
		// Another address, and another host of the first one's /64 for
		// IPv6, are counted apart from it; the proxy itself is not limited.
		for _, addr := range []string{"198.51.100.8", "2001:db8::1"} {
			n := newTestNode(t)
			if _, err := from(addr).Enroll(ctx, n.key, n.mkey, "Q", "q-"+addr+"@example.org"); err != nil {
				t.Fatalf("from %s: %v", addr, err)
			}
		}
		for i, want := range []error{nil, ErrRateLimited} {
			n := newTestNode(t)
			addr := fmt.Sprintf("2001:db8::%d", i+2)
			if _, err := from(addr).Enroll(ctx, n.key, n.mkey, "R", "r-"+addr+"@example.org"); !errors.Is(err, want) {
				t.Fatalf("same /64, %s: %v, want %v", addr, err, want)
			}
		}
	})
	t.Run("code mails per domain", func(t *testing.T) {
		tt := newTestTIS(t, ServerOptions{DomainRate: 0.001, DomainBurst: 2})
		ctx := testCtx(t)
		for i, want := range []error{nil, nil, ErrRateLimited} {
			n := newTestNode(t)
			if _, err := tt.client().Enroll(ctx, n.key, n.mkey, "P", fmt.Sprintf("p%d@flood.example", i)); !errors.Is(err, want) {
				t.Fatalf("mail %d: %v, want %v", i, err, want)
			}
		}
		n := newTestNode(t)
		if _, err := tt.client().Enroll(ctx, n.key, n.mkey, "P", "p@example.org"); err != nil {
			t.Fatalf("other domain: %v", err)
		}
	})
	t.Run("re-issues per person", func(t *testing.T) {
		tt := newTestTIS(t, ServerOptions{})
		ctx := testCtx(t)
		n := newTestNode(t)
		for i := 0; i <= MaxIssuesPerPerson; i++ {
			_, err := tt.client().Enroll(ctx, n.key, n.mkey, "Q", "q@example.org")
			if i < MaxIssuesPerPerson && err != nil {
				t.Fatalf("issue %d: %v", i, err)
			}
			if i == MaxIssuesPerPerson && !errors.Is(err, ErrRateLimited) {
				t.Fatalf("issue %d: %v, want ErrRateLimited", i, err)
			}
		}
	})
}

func TestEnrollNode(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	ctx := testCtx(t)
	n := newTestNode(t)
	dir := filepath.Join(t.TempDir(), "node")
	c := NewClient(BaseURL(strings.TrimPrefix(tt.url, "http://")), tt.root)
	c.Code = tt.mail.Code
	e, err := c.EnrollNode(ctx, n.key, dir, "Frank", "frank@example.org", "")
	if err != nil {
		t.Fatalf("EnrollNode: %v", err)
	}
	le, mk, err := LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	if le.NodeCert.Serial != e.NodeCert.Serial {
		t.Fatal("saved enrollment differs")
	}
	if err := le.Verify(tt.root, n.pub(t), mk.Public().(ed25519.PublicKey), time.Now()); err != nil {
		t.Fatal(err)
	}
	// Enrolling again from the same directory re-issues (same keys), and
	// needs no code: the keys show who it is.
	again, err := EnrollNode(ctx, tt.url, tt.root, n.key, dir, "Frank", "frank@example.org")
	if err != nil || again.MatryoshkaCert.ID != e.MatryoshkaCert.ID {
		t.Fatalf("second EnrollNode: %v", err)
	}
	// A directory never enrolled.
	if _, _, err := LoadEnrollment(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadEnrollment of an empty dir: %v", err)
	}
	if _, err := NewServer(tt.dir, ServerOptions{CertLifetime: time.Hour}); err == nil {
		t.Fatal("certificate lifetime under two hours accepted")
	}
}

// forwardedFor is a transport that sends requests as a reverse proxy would
// for a client at addr.
type forwardedFor struct{ addr string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", "203.0.113.9, "+f.addr)
	return http.DefaultTransport.RoundTrip(r)
}

// TestCertTimesDecoupled: the node and Matryoshka certificates of one
// enrollment carry times drawn apart, each within CertTimeSpread before
// the hour of issue (and before the hour plus the lifetime), on whole
// TimeGranularity steps.
func TestCertTimesDecoupled(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	same := 0
	const people = 4
	for i := range people {
		n := newTestNode(t)
		before := time.Now().UTC().Truncate(TimeGranularity)
		e, err := tt.client().Enroll(testCtx(t), n.key, n.mkey, fmt.Sprintf("Person %d", i), fmt.Sprintf("p%d@example.org", i))
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now().UTC().Truncate(TimeGranularity)
		for _, c := range []*Certificate{e.NodeCert, e.MatryoshkaCert} {
			if c.IssuedAt.After(after) || c.IssuedAt.Before(before.Add(-CertTimeSpread)) ||
				c.Expires.After(after.Add(DefaultCertLifetime)) || c.Expires.Before(before.Add(DefaultCertLifetime-CertTimeSpread)) ||
				!c.IssuedAt.Equal(c.IssuedAt.Truncate(TimeGranularity)) || !c.Expires.Equal(c.Expires.Truncate(TimeGranularity)) {
				t.Fatalf("certificate %v: issued %s, expires %s, outside the spread around %s", c.Type, c.IssuedAt, c.Expires, before)
			}
		}
		if e.NodeCert.IssuedAt.Equal(e.MatryoshkaCert.IssuedAt) {
			same++
		}
	}
	// Equal by chance with probability 1/168 each: all four equal is the
	// old behaviour.
	if same == people {
		t.Fatalf("all %d enrollments' two certificates share their issue time", people)
	}
}
