package service

import (
	"errors"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	bob := testIdentity(t).Address()
	addr := testIdentity(t).Address()
	contacts := map[string]Address{"bob": bob}
	lookup := func(name string) (Address, bool) { a, ok := contacts[name]; return a, ok }
	typo := []byte(addr.String())
	typo[0] ^= 1
	tests := []struct {
		host string
		want Address
		err  error
	}{
		{"bob.pikcio", bob, nil},
		{"BOB.Pikcio.", bob, nil},
		{"www.bob.pikcio", bob, nil},
		{addr.Host(), addr, nil},
		{"www." + strings.ToUpper(addr.Host()), addr, nil},
		{"alice.pikcio", Address{}, ErrUnknownName},
		{"pikcio", Address{}, ErrUnknownName},
		{".pikcio", Address{}, ErrUnknownName},
		{"bob.example", Address{}, ErrUnknownName},
		{string(typo) + ".pikcio", Address{}, ErrInvalidAddress},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := Resolve(tt.host, lookup)
			if tt.err == nil && (err != nil || got != tt.want) || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("Resolve(%q) = %v, %v; want %v, %v", tt.host, got, err, tt.want, tt.err)
			}
		})
	}
	for host, want := range map[string]bool{"a.pikcio": true, "PIKCIO.": true, "a.pikcio.com": false, "xpikcio": false, "": false} {
		if IsPikcioHost(host) != want {
			t.Errorf("IsPikcioHost(%q) = %v", host, !want)
		}
	}
}
