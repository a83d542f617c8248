// Package wire holds the pieces of pikcio's canonical binary encodings
// (tis certificates and revocation lists, trust records): big-endian
// integers, uint16-length-prefixed fields with caps, times as seconds in a
// bounded range, and a reader whose first failure sticks.
package wire

import (
	"encoding/binary"
	"fmt"
	"time"
)

// MaxUnix bounds encoded times (seconds since 1970, about year 36800), far
// from where time.Time comparisons overflow.
const MaxUnix = 1 << 40

// AppendBytes16 appends v prefixed with its uint16 length.
func AppendBytes16(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// Reader consumes a byte slice. The first failure sticks: later reads
// return zero values, and Err reports it wrapped around the sentinel the
// Reader was made with.
type Reader struct {
	b         []byte
	err       error
	malformed error
}

// NewReader reads b; failures wrap malformed.
func NewReader(b []byte, malformed error) *Reader {
	return &Reader{b: b, malformed: malformed}
}

// Err is the first failure, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records a failure unless one is already recorded.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format+": %w", append(args, r.malformed)...)
	}
}

// Take returns the next n bytes (capacity-limited, aliasing the input).
func (r *Reader) Take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.Fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// U8 reads one byte.
func (r *Reader) U8(what string) uint8 {
	if v := r.Take(1, what); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *Reader) U16(what string) uint16 {
	if v := r.Take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *Reader) U32(what string) uint32 {
	if v := r.Take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *Reader) U64(what string) uint64 {
	if v := r.Take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Time reads seconds since 1970 as a uint64 below MaxUnix.
func (r *Reader) Time(what string) time.Time {
	u := r.U64(what)
	if r.err == nil && u >= MaxUnix {
		r.Fail("%s out of range", what)
	}
	return time.Unix(int64(u&(MaxUnix-1)), 0).UTC()
}

// Bytes16 reads a uint16-length-prefixed field of at most max bytes.
func (r *Reader) Bytes16(what string, max int) []byte {
	n := int(r.U16(what))
	if r.err != nil {
		return nil
	}
	if n > max {
		r.Fail("%s: %d bytes, over the cap of %d", what, n, max)
		return nil
	}
	return r.Take(n, what)
}

// End fails if bytes remain.
func (r *Reader) End(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.Fail("%s: %d trailing bytes", what, len(r.b))
	}
}
