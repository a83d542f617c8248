//go:build !unix

package filelock

import "os"

// lock does nothing where flock is not available.
func lock(*os.File) error { return nil }

// tryLock does nothing where flock is not available.
func tryLock(*os.File) error { return nil }
