package tis

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestTokenKeySealed: the token key is stored sealed under the secret: the
// row does not hold the key, a server with another secret cannot open it,
// and a row moved to another period does not open either.
func TestTokenKeySealed(t *testing.T) {
	a := newTestTIS(t, ServerOptions{})
	ctx := testCtx(t)
	key := bytes.Repeat([]byte("private token key "), 20)
	const period = 1000
	got, err := a.srv.TokenKey(ctx, time.Hour, period, func() ([]byte, error) { return key, nil })
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("TokenKey: %v", err)
	}
	// The second caller gets the stored key, not its own.
	got, err = a.srv.TokenKey(ctx, time.Hour, period, func() ([]byte, error) { return []byte("other"), nil })
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("TokenKey again: %q, %v", got, err)
	}
	var sealed []byte
	if err := a.srv.store.Update(ctx, func(tx Tx) error {
		var err error
		sealed, err = tx.TokenKey(3600, period)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, key[:18]) {
		t.Fatal("the stored row holds the key in the clear")
	}
	if err := a.srv.store.Update(ctx, func(tx Tx) error {
		_, err := tx.PutTokenKey(3600, period+1, sealed)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.srv.TokenKey(ctx, time.Hour, period+1, nil); !errors.Is(err, ErrSignature) {
		t.Fatalf("row moved to another period: %v, want ErrSignature", err)
	}

	// The same database with another secret (a dump without the secret).
	a.srv.Close()
	b := &testTIS{dir: a.dir, root: a.root, mail: a.mail}
	b.start(t, ServerOptions{Secret: bytes.Repeat([]byte{7}, secretSize)})
	if _, err := b.srv.TokenKey(ctx, time.Hour, period, nil); !errors.Is(err, ErrSignature) {
		t.Fatalf("another secret: %v, want ErrSignature", err)
	}
}

// TestTakeTokens: the count per enrollment and period holds across calls
// and is separate per period and enrollment.
func TestTakeTokens(t *testing.T) {
	a := newTestTIS(t, ServerOptions{})
	ctx := context.Background()
	alice, bob := ID{1}, ID{2}
	for _, step := range []struct {
		who                ID
		period             int64
		want, got, remains int
	}{
		{alice, 5, 8, 8, 2},
		{alice, 5, 8, 2, 0},
		{alice, 5, 1, 0, 0},
		{bob, 5, 3, 3, 7},
		{alice, 6, 4, 4, 6},
	} {
		got, rem, err := a.srv.TakeTokens(ctx, step.who, step.period, step.want, 10)
		if err != nil || got != step.got || rem != step.remains {
			t.Fatalf("%x period %d want %d: got %d, %d remaining, %v; want %d, %d", step.who[:1], step.period, step.want, got, rem, err, step.got, step.remains)
		}
	}
}
