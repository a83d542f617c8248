package circuit

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/pikcio/pikcio/internal/endreason"
)

var resolveTests = []struct {
	name string
	q    resolveMsg
	wire []byte
}{
	{"name", resolveMsg{kind: resolveName, name: "a.test"}, append([]byte{0, 6}, "a.test"...)},
	{"ptr v4", resolveMsg{kind: resolvePTR, addr: netip.MustParseAddr("127.0.0.2")}, []byte{1, 4, 127, 0, 0, 2}},
	{"ptr v6", resolveMsg{kind: resolvePTR, addr: netip.IPv6Loopback()}, append([]byte{1, 16}, netip.IPv6Loopback().AsSlice()...)},
}

var resolvedTests = []struct {
	name string
	a    resolvedMsg
	wire []byte
}{
	{"two addresses", resolvedMsg{addrs: []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.IPv6Loopback()}},
		append([]byte{0, 2, 4, 4, 10, 1, 2, 3, 6, 16}, netip.IPv6Loopback().AsSlice()...)},
	{"a name", resolvedMsg{names: []string{"x.test"}}, append([]byte{0, 1, 0, 6}, "x.test"...)},
	{"failure", resolvedMsg{status: endreason.ReasonResolve}, []byte{5, 0}},
	{"empty", resolvedMsg{}, []byte{0, 0}},
}

func TestResolveWire(t *testing.T) {
	for _, tc := range resolveTests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.q.encode()
			if err != nil || !bytes.Equal(b, tc.wire) {
				t.Fatalf("encode % x %v, want % x", b, err, tc.wire)
			}
			q, err := decodeResolve(b)
			if err != nil || q != tc.q {
				t.Fatalf("decode %+v %v", q, err)
			}
		})
	}
	for _, tc := range resolvedTests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.a.encode()
			if !bytes.Equal(b, tc.wire) {
				t.Fatalf("encode % x, want % x", b, tc.wire)
			}
			a, err := decodeResolved(b)
			if err != nil || !reflect.DeepEqual(a, tc.a) {
				t.Fatalf("decode %+v %v", a, err)
			}
		})
	}
	for _, bad := range [][]byte{
		nil, {0}, {0, 0}, {0, 3, 'a'}, {0, 1, ' '}, {1, 3, 1, 2, 3}, {2, 1, 'a'},
	} {
		if _, err := decodeResolve(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeResolve(% x) = %v, want ErrMalformed", bad, err)
		}
	}
	for _, bad := range [][]byte{
		nil, {0}, {0, 17}, {0, 1}, {0, 1, 4, 16, 1}, {0, 1, 4, 3, 1, 2, 3}, {0, 1, 6, 4, 1, 2, 3, 4},
		{0, 1, 0, 0}, {0, 1, 9, 1, 'a'}, {0, 0, 1}, {5, 1, 4, 4, 1, 2, 3, 4}, {0, 1, 0, 1, '\n'},
	} {
		if _, err := decodeResolved(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeResolved(% x) = %v, want ErrMalformed", bad, err)
		}
	}
}

// FuzzDecodeResolve: no panic, and what decodes re-encodes to the same
// bytes.
func FuzzDecodeResolve(f *testing.F) {
	for _, tc := range resolveTests {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		q, err := decodeResolve(in)
		if err != nil {
			return
		}
		out, err := q.encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", q, err)
		}
		// An IPv4-mapped address decodes as IPv4 and re-encodes shorter.
		if q.kind == resolveName && !bytes.Equal(out, in) {
			t.Fatalf("% x re-encodes as % x", in, out)
		}
	})
}

// FuzzDecodeResolved: no panic, a decoded answer re-encodes to the same
// bytes, and fits a cell.
func FuzzDecodeResolved(f *testing.F) {
	for _, tc := range resolvedTests {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := decodeResolved(in)
		if err != nil {
			return
		}
		out := a.encode()
		if len(out) > MaxCellData {
			t.Fatalf("answer of %d bytes", len(out))
		}
		b, err := decodeResolved(out)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%+v re-decodes as %+v, %v", a, b, err)
		}
	})
}
