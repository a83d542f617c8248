package tis

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Wire encodings are canonical: a version byte, fields in a fixed order,
// big-endian integers, variable fields prefixed with a uint16 length and
// bounded by a cap. A decoder accepts exactly one encoding of a value and
// rejects trailing bytes, so signing the encoding signs the value.

// maxUnix bounds encoded times (seconds since 1970, about year 36800), far
// from where time.Time comparisons overflow.
const maxUnix = 1 << 40

// validTime reports whether t is in the encodable range.
func validTime(t time.Time) bool {
	u := t.Unix()
	return u >= 0 && u < maxUnix
}

// appendBytes16 appends b prefixed with its uint16 length.
func appendBytes16(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// reader consumes a byte slice; the first failure sticks and later reads
// return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format+": %w", append(args, ErrMalformed)...)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) uint8 {
	v := r.take(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16(what string) uint16 {
	v := r.take(2, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *reader) u32(what string) uint32 {
	v := r.take(4, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) u64(what string) uint64 {
	v := r.take(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// bytes16 reads a uint16-length-prefixed field of at most max bytes.
func (r *reader) bytes16(what string, max int) []byte {
	n := int(r.u16(what))
	if r.err != nil {
		return nil
	}
	if n > max {
		r.fail("%s: %d bytes, over the cap of %d", what, n, max)
		return nil
	}
	return r.take(n, what)
}

// end fails if bytes remain.
func (r *reader) end(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%s: %d trailing bytes", what, len(r.b))
	}
}
