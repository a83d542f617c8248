package filelock

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// TestLockSerializes runs read-modify-write cycles on a counter file from
// many goroutines, each with its own lock file handle as separate
// processes would have: no increment may be lost.
func TestLockSerializes(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no flock on " + runtime.GOOS)
	}
	dir := t.TempDir()
	lockPath, counter := filepath.Join(dir, "c.lock"), filepath.Join(dir, "c")
	if err := os.WriteFile(counter, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				unlock, err := Lock(lockPath)
				if err != nil {
					errs <- err
					return
				}
				b, err := os.ReadFile(counter)
				if err == nil {
					var n int
					n, err = strconv.Atoi(string(b))
					if err == nil {
						runtime.Gosched()
						err = os.WriteFile(counter, []byte(strconv.Itoa(n+1)), 0o600)
					}
				}
				unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != strconv.Itoa(workers*rounds) {
		t.Fatalf("counter %s, want %d: lost updates", got, workers*rounds)
	}
	fi, err := os.Stat(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode %v", fi.Mode().Perm())
	}
}

func TestLockBadPath(t *testing.T) {
	if _, err := Lock(filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Fatal("Lock in a missing directory succeeded")
	}
}

// TestTryLock: a second holder is refused with ErrLocked while the first
// holds the lock, and gets it once released.
func TestTryLock(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no flock")
	}
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := TryLock(path); !errors.Is(err, ErrLocked) {
		if u != nil {
			u()
		}
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	unlock()
	u, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after release: %v", err)
	}
	u()
	if _, err := TryLock(filepath.Join(t.TempDir(), "missing", "lock")); err == nil {
		t.Fatal("TryLock in a missing directory succeeded")
	}
}
