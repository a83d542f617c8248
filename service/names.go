package service

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownName is returned for a .pikcio name that is neither an address
// nor the name of a contact.
var ErrUnknownName = errors.New("unknown .pikcio name")

// IsPikcioHost reports whether host (any case, with or without a trailing
// dot) is under .pikcio: such a name must never go to an exit or to DNS.
func IsPikcioHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == Suffix[1:] || strings.HasSuffix(h, Suffix)
}

// Resolve maps a host under .pikcio to a service address: ADDRESS.pikcio
// is the address itself; NAME.pikcio is looked up with lookup (the local
// contacts file: the name never leaves the machine). Labels before the
// last one are ignored, as Tor does with subdomains of onion addresses, so
// www.bob.pikcio is bob's service. A 56-character label is taken for an
// address, and its parse error says what is wrong with it.
func Resolve(host string, lookup func(name string) (Address, bool)) (Address, error) {
	if !IsPikcioHost(host) {
		return Address{}, fmt.Errorf("%q is not under %s: %w", host, Suffix, ErrUnknownName)
	}
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), Suffix)
	label := h[strings.LastIndexByte(h, '.')+1:]
	if label == "" {
		return Address{}, fmt.Errorf("empty name under %s: %w", Suffix, ErrUnknownName)
	}
	if len(label) == addressLen {
		return ParseAddress(label)
	}
	if lookup != nil {
		if a, ok := lookup(label); ok {
			return a, nil
		}
	}
	return Address{}, fmt.Errorf("%s%s is not a contact: %w", label, Suffix, ErrUnknownName)
}
