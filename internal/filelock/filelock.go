// Package filelock serializes read-modify-write cycles on a small state
// file between processes (the running node and a command such as
// `pikcio contacts remove`): an exclusive advisory lock on a separate
// lock file, held while the state file is re-read, changed and replaced.
//
// On unix the lock is flock(2), which also excludes other open files in
// the same process; elsewhere Lock only creates the lock file and does not
// exclude anything.
package filelock

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked reports, from TryLock, a lock another holder has.
var ErrLocked = errors.New("locked by another holder")

// Lock blocks until it holds an exclusive lock on path (created with mode
// 0600 if missing), and returns the function that releases it. Holders
// keep the lock for the time of one file update.
func Lock(path string) (unlock func(), err error) { return take(path, lock) }

// TryLock is Lock without waiting: ErrLocked when another holder has the
// lock. A node locks its data directory with it for as long as it runs.
func TryLock(path string) (unlock func(), err error) { return take(path, tryLock) }

// take opens (or creates) the lock file and locks it with how.
func take(path string, how func(*os.File) error) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := how(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
