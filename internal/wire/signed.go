package wire

import (
	"crypto/ed25519"
	"fmt"
	"slices"
)

// A signed record is a canonical body followed by an Ed25519 signature as
// its last Bytes16 field. The signature covers a context string (naming
// the record kind and version, ending in NUL) followed by the body, so
// that a signature made for one kind of record never verifies as another.
// Decoders read the body's fields, then Bytes16(SignatureSize), then End,
// and re-encode to refuse what is not canonical.

// Signed is the message a signed record's signature covers: context
// followed by body.
func Signed(context, body []byte) []byte {
	return append(slices.Clip(context), body...)
}

// Sign signs body under context with key.
func Sign(key ed25519.PrivateKey, context, body []byte) []byte {
	return ed25519.Sign(key, Signed(context, body))
}

// Verify reports whether sig is key's signature of body under context. A
// key or signature of the wrong size is false, never a panic.
func Verify(key ed25519.PublicKey, context, body, sig []byte) bool {
	return len(key) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
		ed25519.Verify(key, Signed(context, body), sig)
}

// AppendSignature appends sig to body as the record's last field. A
// signature that is not ed25519.SignatureSize bytes gives an error naming
// what and wrapping malformed.
func AppendSignature(body, sig []byte, what string, malformed error) ([]byte, error) {
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%s signature of %d bytes: %w", what, len(sig), malformed)
	}
	return AppendBytes16(body, sig), nil
}
