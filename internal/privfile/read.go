package privfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Errors of Read.
var (
	// ErrPermissions reports a private file that others may read.
	ErrPermissions = errors.New("private file readable by other users")
	// ErrTooLarge reports a file over the size its reader allows.
	ErrTooLarge = errors.New("file too large")
)

// EnsureDir creates dir with mode 0700 if it is missing, and refuses a
// path that is not a directory. An existing directory keeps its mode,
// which perm returns (a caller warns when others may enter it).
func EnsureDir(dir string) (perm fs.FileMode, err error) {
	if dir == "" {
		return 0, errors.New("directory: empty path")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return 0, fmt.Errorf("create directory %s: %w", dir, err)
		}
		// MkdirAll is subject to the umask; make the mode exact.
		if err := os.Chmod(dir, 0o700); err != nil {
			return 0, fmt.Errorf("directory %s: %w", dir, err)
		}
		return 0o700, nil
	case err != nil:
		return 0, fmt.Errorf("directory %s: %w", dir, err)
	case !fi.IsDir():
		return 0, fmt.Errorf("directory %s: not a directory", dir)
	}
	return fi.Mode().Perm(), nil
}

// Read reads a regular file of at most max bytes that only its owner may
// read: ErrPermissions when others may, ErrTooLarge when it is larger.
// A missing file gives an error wrapping fs.ErrNotExist.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o, want 0600 (chmod 600 it): %w", path, fi.Mode().Perm(), ErrPermissions)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over %d bytes: %w", path, max, ErrTooLarge)
	}
	return b, nil
}
