package service

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func testIdentity(t testing.TB) *Identity {
	t.Helper()
	id, err := NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rawAddress encodes key and version with a correct checksum, whether or
// not key is a usable point.
func rawAddress(key [32]byte, version byte) string {
	var raw [35]byte
	copy(raw[:], key[:])
	c := addressChecksum(key[:], version)
	raw[32], raw[33], raw[34] = c[0], c[1], version
	return b32.EncodeToString(raw[:])
}

func TestAddressRoundTrip(t *testing.T) {
	id := testIdentity(t)
	a := id.Address()
	s := a.String()
	if len(s) != addressLen || strings.ToLower(s) != s {
		t.Fatalf("address %q: want %d lowercase characters", s, addressLen)
	}
	if !strings.HasSuffix(a.Host(), ".pikcio") {
		t.Fatalf("host %q lacks .pikcio", a.Host())
	}
	for _, in := range []string{s, s + ".pikcio", strings.ToUpper(s) + ".PIKCIO", s + ".pikcio."} {
		got, err := ParseAddress(in)
		if err != nil || got != a {
			t.Errorf("ParseAddress(%q) = %v, %v; want %v", in, got, err, a)
		}
	}
	if !ed25519.PublicKey(a[:]).Equal(id.priv.Public()) {
		t.Fatal("address is not the public key")
	}
	again, err := IdentityFromSeed(id.Seed())
	if err != nil || again.Address() != a {
		t.Fatalf("identity from its seed: %v", err)
	}
	if _, err := IdentityFromSeed(id.Seed()[1:]); err == nil {
		t.Fatal("short seed accepted")
	}
}

func TestParseAddressErrors(t *testing.T) {
	good := testIdentity(t).Address().String()
	flip := []byte(good)
	flip[10] = map[bool]byte{true: 'b', false: 'a'}[flip[10] == 'a']
	var key [32]byte
	copy(key[:], testIdentity(t).Address().PublicKey())
	identity := [32]byte{1} // y = 1: the neutral element
	var notPoint [32]byte
	for y := byte(2); ; y++ { // find a y that is not on the curve
		notPoint[0] = y
		if _, err := (Address(notPoint)).point(); err != nil && strings.Contains(err.Error(), "not an Ed25519 point") {
			break
		}
	}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "0 characters"},
		{"short", good[:55], "55 characters"},
		{"long", good + "a", "57 characters"},
		{"other suffix", good + ".onion", "characters"},
		{"subdomain", "www." + good + ".pikcio", "characters"},
		{"alphabet", good[:55] + "1", "not base32"},
		{"typo", string(flip), "checksum"},
		{"version", rawAddress(key, 3), "version 3"},
		{"small order", rawAddress(identity, AddressVersion), "small order"},
		{"not a point", rawAddress(notPoint, AddressVersion), "not an Ed25519 point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAddress(tt.in)
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("ParseAddress(%q) = %v, want ErrInvalidAddress", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}
