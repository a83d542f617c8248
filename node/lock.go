package node

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/pikcio/pikcio/internal/filelock"
)

// lockDataDir takes an exclusive lock on dir's lock file, so that two nodes
// never run with the same identity and state. The lock ends with the
// process or with release. Where flock is not available it does nothing.
func lockDataDir(dir string) (release func(), err error) {
	release, err = filelock.TryLock(filepath.Join(dir, LockFile))
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return release, nil
}
