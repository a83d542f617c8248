//go:build unix

package datadir

import (
	"errors"
	"testing"
)

// TestLock: a second Lock of a locked directory fails with ErrInUse, and
// succeeds once the first is released.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r2, err := Lock(dir); !errors.Is(err, ErrInUse) {
		if r2 != nil {
			r2()
		}
		t.Fatalf("second lock: %v, want ErrInUse", err)
	}
	release()
	r3, err := Lock(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	r3()
}
