package tis

import (
	"errors"
	"fmt"

	"github.com/pikcio/pikcio/internal/privfile"
)

// ensureDir creates dir with mode 0700 if it is missing.
func ensureDir(dir string) error {
	_, err := privfile.EnsureDir(dir)
	return err
}

// readPrivate reads a file of at most max bytes that only its owner may
// read (ErrPermissions otherwise; ErrMalformed when larger).
func readPrivate(path string, max int64) ([]byte, error) {
	b, err := privfile.Read(path, max)
	if errors.Is(err, privfile.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return b, err
}
