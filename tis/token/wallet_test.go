package token

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pikcio/pikcio/tis"
)

// waitRefill waits (at most 30s) for w's background refill to end.
func waitRefill(t *testing.T, w *Wallet) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); w.State().Refilling; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("background refill did not end")
		}
	}
}

// waitStuck waits (at most 30s) until a background refill has reached the
// TIS handler that holds it up and closes stuck.
func waitStuck(t *testing.T, stuck <-chan struct{}) {
	t.Helper()
	select {
	case <-stuck:
	case <-time.After(30 * time.Second):
		t.Fatal("no background refill")
	}
}

func TestWallet(t *testing.T) {
	const limit = 12
	f := newFixture(t, IssuerOptions{TokensPerPeriod: limit})
	alice := f.tis.Enroll(t, "alice")
	path := filepath.Join(t.TempDir(), "tokens")
	opts := WalletOptions{Low: 2, Target: 5, Now: f.clock.Now}
	w, err := OpenWallet(path, f.client(alice), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	guard := f.redeemer(t, RedeemerOptions{})

	// An empty wallet gets a first batch (firstBatch) before the first
	// token.
	tok, err := w.Take(ctx(t), testGuard)
	if err != nil {
		t.Fatalf("first Take: %v", err)
	}
	if err := guard.Redeem(tok, f.clock.Now()); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("wallet file: %v, mode %v", err, fi.Mode())
	}
	if st := w.State(); st.Tokens != firstBatch-1 || st.Remaining != limit-firstBatch || st.LastError != nil {
		t.Fatalf("after one Take: %+v", st)
	}

	// Falling under Low starts a background refill up to Target.
	for range 2 {
		tok, err := w.Take(ctx(t), testGuard)
		if err != nil {
			t.Fatal(err)
		}
		if err := guard.Redeem(tok, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitRefill(t, w)
	if st := w.State(); st.Tokens != 5 || st.Remaining != limit-8 {
		t.Fatalf("after the background refill: %+v", st)
	}

	// The tokens survive a restart, and none is handed out twice.
	w, err = OpenWallet(path, f.client(alice), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if st := w.State(); st.Tokens != 5 {
		t.Fatalf("reopened wallet holds %d tokens, want 5", st.Tokens)
	}

	// Spend everything the period allows: then a clear error naming the
	// limit, until the next period.
	var spent int
	for ; spent <= limit; spent++ { // bounded: a broken limit ends the loop too
		tok, err := w.Take(ctx(t), testGuard)
		if err != nil {
			if !errors.Is(err, ErrNoTokens) || !errors.Is(err, ErrLimit) {
				t.Fatalf("out of tokens: %v, want ErrNoTokens and ErrLimit", err)
			}
			break
		}
		if err := guard.Redeem(tok, f.clock.Now()); err != nil {
			t.Fatalf("token %d: %v", spent, err)
		}
	}
	if spent != limit-3 {
		t.Fatalf("spent %d tokens after reopening, want %d", spent, limit-3)
	}
	waitRefill(t, w)
	if st := w.State(); !errors.Is(st.LastError, ErrLimit) || st.RetryAt.IsZero() {
		t.Fatalf("state at the limit: %+v", st)
	}

	// The next period: the old tokens are gone, new ones come.
	f.clock.Add(DefaultPeriod)
	guard = f.redeemer(t, RedeemerOptions{})
	if tok, err = w.Take(ctx(t), testGuard); err != nil {
		t.Fatalf("Take in the next period: %v", err)
	}
	if err := guard.Redeem(tok, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestWalletDropsExpiredTokens(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	w, err := OpenWallet(filepath.Join(t.TempDir(), "tokens"), f.client(f.tis.Enroll(t, "alice")), WalletOptions{Low: 2, Target: 8, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Refill(ctx(t), testGuard); err != nil {
		t.Fatal(err)
	}
	if st := w.State(); st.Tokens != 8 {
		t.Fatalf("refilled wallet holds %d, want 8", st.Tokens)
	}
	f.clock.Add(DefaultPeriod)
	if st := w.State(); st.Tokens != 0 {
		t.Fatalf("a period later the wallet holds %d tokens of the old key", st.Tokens)
	}
}

func TestOpenWalletRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
		want error
	}{
		{"garbage", []byte("not a wallet"), 0o600, ErrMalformed},
		{"truncated", []byte{walletVersion, 0, 0, 0, 1}, 0o600, ErrMalformed},
		{"readable by others", encodeWallet(nil), 0o644, tis.ErrPermissions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode)
			_, err := OpenWallet(path, nil, WalletOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenWallet: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWalletPerGuard(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	w, err := OpenWallet(filepath.Join(t.TempDir(), "tokens"), f.client(f.tis.Enroll(t, "alice")), WalletOptions{Low: 1, Target: 2, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for _, g := range []peer.ID{testGuard, otherGuard} {
		tok, err := w.Take(ctx(t), g)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.redeemerFor(t, g, RedeemerOptions{}).Redeem(tok, f.clock.Now()); err != nil {
			t.Fatalf("token taken for %s at that guard: %v", g, err)
		}
	}
	if st := w.State(); st.Guards != 2 || st.Tokens != 2 {
		t.Fatalf("state: %+v, want 2 guards with a token each", st)
	}
	if err := w.Forget(otherGuard); err != nil {
		t.Fatal(err)
	}
	if st := w.State(); st.Guards != 1 || st.Tokens != 1 {
		t.Fatalf("after Forget: %+v", st)
	}
}

// TestWalletCloseStopsRefill: Close ends a background refill that a TIS
// which never answers holds up, and waits for it.
func TestWalletCloseStopsRefill(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	w, err := OpenWallet(filepath.Join(t.TempDir(), "tokens"), f.client(f.tis.Enroll(t, "alice")), WalletOptions{Low: 2, Target: 2, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Refill(ctx(t), testGuard); err != nil {
		t.Fatal(err)
	}
	stuck := make(chan struct{})
	f.tis.Server.MountTokens(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathIssue {
			io.Copy(io.Discard, r.Body) // then the server notices the client leave
			close(stuck)
			<-r.Context().Done()
			return
		}
		f.issuer.Handler().ServeHTTP(rw, r)
	}))
	if _, err := w.Take(ctx(t), testGuard); err != nil {
		t.Fatal(err)
	}
	waitStuck(t, stuck)
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the refill")
	}
	if st := w.State(); st.Refilling || st.LastError != nil || st.Tokens != 1 {
		t.Fatalf("after Close: %+v", st)
	}
}

// TestWalletTakeSavedByClose: a token handed out is gone from the file
// once the wallet is closed, though Take saves in the background.
func TestWalletTakeSavedByClose(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	path := filepath.Join(t.TempDir(), "tokens")
	opts := WalletOptions{Low: 1, Target: 4, Now: f.clock.Now}
	w, err := OpenWallet(path, f.client(f.tis.Enroll(t, "alice")), opts)
	if err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{}
	for range 3 {
		tok, err := w.Take(ctx(t), testGuard)
		if err != nil {
			t.Fatal(err)
		}
		taken[string(tok)] = true
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenWallet(path, f.client(f.tis.Enroll(t, "bob")), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	if st := again.State(); st.Tokens != 1 {
		t.Fatalf("reopened wallet holds %d tokens, want the 1 not taken", st.Tokens)
	}
	tok, err := again.Take(ctx(t), testGuard)
	if err != nil || taken[string(tok)] {
		t.Fatalf("Take after reopening: %v, a token handed out before: %v", err, taken[string(tok)])
	}
}

// TestWalletTakeNotBehindOtherGuardsRefill: a Take for a guard without
// tokens (the client's guard died, its builds go through the next one)
// gets its first tokens while a background refill for another guard is
// held up at the TIS. Before, refills ran one at a time, so the build
// through the new guard waited for the old guard's batch.
func TestWalletTakeNotBehindOtherGuardsRefill(t *testing.T) {
	f := newFixture(t, IssuerOptions{})
	var mu sync.Mutex
	issues := 0
	stuck, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.tis.Server.MountTokens(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathIssue {
			mu.Lock()
			issues++
			n := issues
			mu.Unlock()
			if n == 2 { // the background refill after the first Take
				close(stuck)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
		}
		f.issuer.Handler().ServeHTTP(rw, r)
	}))
	w, err := OpenWallet(filepath.Join(t.TempDir(), "tokens"), f.client(f.tis.Enroll(t, "alice")), WalletOptions{Low: 8, Target: 8, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Take(ctx(t), testGuard); err != nil {
		t.Fatal(err)
	}
	waitStuck(t, stuck)
	// Bounded only so that the test ends: the refill it used to wait for
	// never ends before release.
	tctx, cancel := context.WithTimeout(ctx(t), 20*time.Second)
	defer cancel()
	tok, err := w.Take(tctx, otherGuard)
	if err != nil {
		t.Fatalf("take for another guard during a refill: %v", err)
	}
	if err := f.redeemerFor(t, otherGuard, RedeemerOptions{}).Redeem(tok, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if !w.State().Refilling {
		t.Fatal("the held-up refill ended")
	}
}
