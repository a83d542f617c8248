package service

import (
	"fmt"

	"github.com/pikcio/pikcio/internal/wire"
)

// newReader reads b with pikcio's shared reader; failures wrap
// ErrMalformed.
func newReader(b []byte) *wire.Reader { return wire.NewReader(b, ErrMalformed) }

func take32(r *wire.Reader, what string) (a [32]byte) {
	copy(a[:], r.Take(32, what))
	return a
}

// zeroPadding fails unless pad is all zero.
func zeroPadding(pad []byte, what string) error {
	for _, c := range pad {
		if c != 0 {
			return fmt.Errorf("%s: nonzero padding: %w", what, ErrMalformed)
		}
	}
	return nil
}
