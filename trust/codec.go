package trust

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Encodings are canonical: a version byte, a record kind byte, fields in a
// fixed order, big-endian integers, variable fields prefixed with a uint16
// length and bounded by a cap, no trailing bytes. Signatures are over a
// per-kind context string followed by the encoding without the signature,
// so a decoded record re-encodes to the bytes that were signed.

const (
	recordVersion = 1

	kindVouch       = 1
	kindWithdrawal  = 2
	kindAttestation = 3
	kindRelayScore  = 4

	// maxUnix bounds encoded times (seconds since 1970).
	maxUnix = 1 << 40
)

// validTime reports whether t is whole seconds in the encodable range.
func validTime(t time.Time) bool {
	u := t.Unix()
	return u >= 0 && u < maxUnix && t.Nanosecond() == 0
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
}

func appendBytes16(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// reader consumes a byte slice; the first failure sticks.
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
	if len(r.b) < n {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) uint8 {
	if v := r.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if v := r.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) time(what string) time.Time {
	u := r.u64(what)
	if r.err == nil && u >= maxUnix {
		r.fail("%s out of range", what)
	}
	return time.Unix(int64(u&(maxUnix-1)), 0).UTC()
}

func (r *reader) bytes16(what string, max int) []byte {
	v := r.take(2, what)
	if v == nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(v))
	if n > max {
		r.fail("%s: %d bytes, over the cap of %d", what, n, max)
		return nil
	}
	return r.take(n, what)
}

// header reads and checks the version and kind bytes.
func (r *reader) header(kind byte, what string) {
	if v := r.u8(what + " version"); r.err == nil && v != recordVersion {
		r.fail("%s version %d", what, v)
	}
	if k := r.u8(what + " kind"); r.err == nil && k != kind {
		r.fail("%s: record kind %d", what, k)
	}
}

func (r *reader) end(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%s: %d trailing bytes", what, len(r.b))
	}
}
