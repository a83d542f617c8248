package service

import (
	"encoding/binary"
	"fmt"
)

// reader walks a byte slice; the first short read makes every later read
// fail, and err says where.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%s: need %d bytes at offset %d, have %d: %w", what, n, r.off, len(r.b)-r.off, ErrMalformed)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8(what string) uint8 {
	if v := r.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if v := r.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if v := r.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if v := r.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) array32(what string) (a [32]byte) {
	copy(a[:], r.take(32, what))
	return a
}

// end fails unless everything was read.
func (r *reader) end(what string) error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%s: %d trailing bytes: %w", what, len(r.b)-r.off, ErrMalformed)
	}
	return r.err
}

// zeroTail fails unless the rest is zero padding, and consumes it.
func (r *reader) zeroTail(what string) error {
	if r.err != nil {
		return r.err
	}
	for _, c := range r.b[r.off:] {
		if c != 0 {
			return fmt.Errorf("%s: nonzero padding: %w", what, ErrMalformed)
		}
	}
	r.off = len(r.b)
	return nil
}
