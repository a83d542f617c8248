package service

import (
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// Suffix is the top-level name under which services are reached.
const Suffix = ".pikcio"

// AddressVersion is the version byte inside every address this package
// makes and the only one it accepts.
const AddressVersion = 1

// addressLen is the length of an address without the suffix: base32 of
// public key (32) | checksum (2) | version (1).
const addressLen = 56

var (
	// ErrInvalidAddress is wrapped by every address parse failure.
	ErrInvalidAddress = errors.New("invalid pikcio address")
	b32               = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

// Address is a service's address: its long-term Ed25519 public key. Its
// string form (String) is self-authenticating: whoever holds it can check
// a descriptor's signature chain against it, and a typo fails the checksum.
type Address [ed25519.PublicKeySize]byte

func addressChecksum(pub []byte, version byte) [2]byte {
	h := sha3.New256()
	h.Write([]byte(Suffix + " checksum"))
	h.Write(pub)
	h.Write([]byte{version})
	var c [2]byte
	copy(c[:], h.Sum(nil))
	return c
}

// AddressOf returns the address of a service public key. It fails for a
// key that is not a usable Ed25519 point (see ParseAddress).
func AddressOf(pub ed25519.PublicKey) (Address, error) {
	var a Address
	if len(pub) != ed25519.PublicKeySize {
		return a, fmt.Errorf("public key of %d bytes: %w", len(pub), ErrInvalidAddress)
	}
	copy(a[:], pub)
	if _, err := a.point(); err != nil {
		return Address{}, err
	}
	return a, nil
}

// point decodes the key and refuses points of small order, which would
// blind to a key anyone could sign for.
func (a Address) point() (*edwards25519.Point, error) {
	p, err := new(edwards25519.Point).SetBytes(a[:])
	if err != nil {
		return nil, fmt.Errorf("key is not an Ed25519 point: %w", ErrInvalidAddress)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("key is a point of small order: %w", ErrInvalidAddress)
	}
	return p, nil
}

// PublicKey returns the service's Ed25519 public key.
func (a Address) PublicKey() ed25519.PublicKey {
	return ed25519.PublicKey(append([]byte(nil), a[:]...))
}

// String returns the 56-character address without the suffix.
func (a Address) String() string {
	var raw [35]byte
	copy(raw[:], a[:])
	c := addressChecksum(a[:], AddressVersion)
	raw[32], raw[33], raw[34] = c[0], c[1], AddressVersion
	return b32.EncodeToString(raw[:])
}

// Host returns the address as a host name, ADDRESS.pikcio.
func (a Address) Host() string { return a.String() + Suffix }

// ParseAddress parses an address with or without the .pikcio suffix (and
// a trailing dot), in any case. Its errors wrap ErrInvalidAddress and say
// what is wrong: length, alphabet, version, checksum or key.
func ParseAddress(s string) (Address, error) {
	var a Address
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	s = strings.TrimSuffix(s, Suffix)
	if len(s) != addressLen {
		return a, fmt.Errorf("address of %d characters, want %d: %w", len(s), addressLen, ErrInvalidAddress)
	}
	raw, err := b32.DecodeString(s)
	if err != nil || len(raw) != 35 {
		return a, fmt.Errorf("address is not base32 (a-z, 2-7): %w", ErrInvalidAddress)
	}
	if raw[34] != AddressVersion {
		return a, fmt.Errorf("address version %d, want %d: %w", raw[34], AddressVersion, ErrInvalidAddress)
	}
	if c := addressChecksum(raw[:32], raw[34]); c[0] != raw[32] || c[1] != raw[33] {
		return a, fmt.Errorf("address checksum does not match (a typo?): %w", ErrInvalidAddress)
	}
	copy(a[:], raw[:32])
	if _, err := a.point(); err != nil {
		return Address{}, err
	}
	return a, nil
}
