package tis

import (
	"time"

	"github.com/pikcio/pikcio/internal/wire"
)

// Wire encodings are canonical: a version byte, fields in a fixed order,
// big-endian integers, variable fields prefixed with a uint16 length and
// bounded by a cap. A decoder accepts exactly one encoding of a value and
// rejects trailing bytes, so signing the encoding signs the value.

// validTime reports whether t is in the encodable range.
func validTime(t time.Time) bool {
	u := t.Unix()
	return u >= 0 && u < wire.MaxUnix
}
