package tis

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"Alice", "Alice", nil},
		{"  Alice \t  Liddell\n", "Alice Liddell", nil},
		{"Zoe\u0308", "Zo\u00eb", nil}, // combining diaeresis composed (NFC)
		{"Zo\u00eb", "Zo\u00eb", nil},
		{"", "", ErrBadProperties},
		{" \t ", "", ErrBadProperties},
		{"a\x00b", "", ErrBadProperties},
		{"\xff", "", ErrBadProperties},
		{strings.Repeat("a", MaxNameLen+1), "", ErrBadProperties},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeName(tc.in)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("NormalizeName(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"alice@example.org", "alice@example.org", nil},
		{"  Alice@Example.ORG \n", "alice@example.org", nil},
		{"ZOE\u0308@example.org", "zo\u00eb@example.org", nil},
		{"alice", "", ErrBadProperties},
		{"@example.org", "", ErrBadProperties},
		{"alice@", "", ErrBadProperties},
		{"a@b@c", "", ErrBadProperties},
		{"al ice@example.org", "", ErrBadProperties},
		{"alice@exa\tmple.org", "", ErrBadProperties},
		{"\xffa@b", "", ErrBadProperties},
		{strings.Repeat("a", MaxEmailLen) + "@b", "", ErrBadProperties},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeEmail(tc.in)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzNormalize checks that normalization is idempotent.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Alice", "  Alice \t  Liddell\n", "Zoe\u0308", "ZOE\u0308@example.org", "a@b", "\u212b@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := NormalizeName(s); err == nil {
			if n2, err := NormalizeName(n); err != nil || n2 != n {
				t.Fatalf("NormalizeName not idempotent: %q -> %q -> %q, %v", s, n, n2, err)
			}
		}
		if e, err := NormalizeEmail(s); err == nil {
			if e2, err := NormalizeEmail(e); err != nil || e2 != e {
				t.Fatalf("NormalizeEmail not idempotent: %q -> %q -> %q, %v", s, e, e2, err)
			}
		}
	})
}
