package token

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

func TestEnrolledClientObtainsAndRedeemsTokens(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	alice := f.tis.Enroll(t, "alice")
	toks, batch := issue(t, f.client(alice), 8)
	if len(toks) != 8 || batch.Remaining != DefaultTokensPerPeriod-8 {
		t.Fatalf("got %d tokens, %d remaining; want 8, %d", len(toks), batch.Remaining, DefaultTokensPerPeriod-8)
	}
	guard := f.redeemer(t, RedeemerOptions{})
	for i, tok := range toks {
		if err := guard.Redeem(tok, f.clock.Now()); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if err := guard.Redeem(toks[3], f.clock.Now()); !errors.Is(err, ErrSpent) {
		t.Fatalf("reused token: %v, want ErrSpent", err)
	}
	if keys, spent := guard.Keys(); keys != 2 || spent != 8 {
		t.Fatalf("guard holds %d keys, %d spent; want 2, 8", keys, spent)
	}
}

func TestIssuanceLimit(t *testing.T) {
	const limit = 10
	f := newFixture(t, IssuerOptions{TokensPerPeriod: limit})
	alice := f.tis.Enroll(t, "alice")
	c := f.client(alice)
	var first *Key
	for _, step := range []struct {
		ask, got, remaining int
	}{
		{8, 8, 2},
		{8, 2, 0},
	} {
		toks, b := issue(t, c, step.ask)
		first = b.Key
		if len(toks) != step.got || b.Remaining != step.remaining {
			t.Fatalf("asked %d: got %d, %d remaining; want %d, %d", step.ask, len(toks), b.Remaining, step.got, step.remaining)
		}
	}
	if _, err := c.Issue(ctx(t), testGuard, 1); !errors.Is(err, ErrLimit) {
		t.Fatalf("past the limit: %v, want ErrLimit", err)
	}

	// A fresh certificate for the same enrollment (same node ID) shares
	// the count.
	again, err := tis.NewClient(f.tis.URL, f.tis.Root).Enroll(ctx(t), alice.NodeKey, alice.MatryoshkaKey, "alice", "alice@example.org")
	if err != nil {
		t.Fatalf("re-enroll: %v", err)
	}
	if again.NodeCert.Serial == alice.Enrollment.NodeCert.Serial || again.NodeCert.ID != alice.Enrollment.NodeCert.ID {
		t.Fatal("re-enrollment did not give a new certificate of the same node ID")
	}
	alice.Enrollment = again
	if _, err := f.client(alice).Issue(ctx(t), testGuard, 1); !errors.Is(err, ErrLimit) {
		t.Fatalf("same enrollment: %v, want ErrLimit", err)
	}
	// Another enrollment has its own count.
	if toks, _ := issue(t, f.client(f.tis.Enroll(t, "bob")), limit); len(toks) != limit {
		t.Fatalf("bob got %d tokens, want %d", len(toks), limit)
	}
	// The next period starts a new count, under a new key.
	f.clock.Add(DefaultPeriod)
	toks, b := issue(t, c, 4)
	if len(toks) != 4 || b.Remaining != limit-4 {
		t.Fatalf("next period: %d tokens, %d remaining", len(toks), b.Remaining)
	}
	if b.Key.ID() == first.ID() || !b.Key.Start.Equal(first.End) {
		t.Fatalf("next period's key %s [%s, %s) after %s [%s, %s)", b.Key.ID(), b.Key.Start, b.Key.End, first.ID(), first.Start, first.End)
	}
}

// TestGuardVerifiesOffline: a guard that fetched the keys once checks
// tokens of the next period without asking the TIS again.
func TestGuardVerifiesOffline(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	guard := f.redeemer(t, RedeemerOptions{})
	c := f.client(f.tis.Enroll(t, "alice"))
	f.clock.Add(DefaultPeriod)
	toks, _ := issue(t, c, 1)
	if err := f.tis.Server.Close(); err != nil {
		t.Fatal(err)
	}
	if err := guard.Redeem(toks[0], f.clock.Now()); err != nil {
		t.Fatalf("next period's token, TIS down: %v", err)
	}
}

func TestIssuanceLimitConcurrent(t *testing.T) {
	const limit = 10
	f := newFixture(t, IssuerOptions{TokensPerPeriod: limit})
	c := f.client(f.tis.Enroll(t, "alice"))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Issue(ctx(t), testGuard, 4)
			if err != nil {
				if !errors.Is(err, ErrLimit) {
					t.Errorf("Issue: %v", err)
				}
				return
			}
			mu.Lock()
			total += len(b.Tokens)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != limit {
		t.Fatalf("6 concurrent requests of 4 got %d tokens, want the limit %d", total, limit)
	}
}

// TestIssueAcrossPeriodBoundary: at the turn of a period a client whose
// clock is a little behind or ahead of the TIS's still gets tokens (of
// the TIS's current key), which a guard on the TIS's clock accepts.
func TestIssueAcrossPeriodBoundary(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	keys, err := f.issuer.Keys(ctx(t), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(keys[0].End.Sub(f.clock.Now()) + 30*time.Second) // 30s into the next period
	guard := f.redeemer(t, RedeemerOptions{})
	p := f.tis.Enroll(t, "alice")
	for _, skew := range []time.Duration{-2 * time.Minute, 0, 2 * time.Minute} {
		c := f.client(p)
		c.Now = func() time.Time { return f.clock.Now().Add(skew) }
		toks, b := issue(t, c, 1)
		if b.Key.ID() != keys[1].ID() {
			t.Fatalf("client %s off: tokens of key %s, want the current %s", skew, b.Key.ID(), keys[1].ID())
		}
		if err := guard.Redeem(toks[0], f.clock.Now()); err != nil {
			t.Fatalf("client %s off: %v", skew, err)
		}
	}
	// A guard whose clock is behind the client's accepts its token a
	// little before the period starts.
	toks, _ := issue(t, f.client(p), 1)
	if err := f.redeemer(t, RedeemerOptions{}).Redeem(toks[0], keys[1].Start.Add(-time.Minute)); err != nil {
		t.Fatalf("a minute before the period: %v", err)
	}
}
