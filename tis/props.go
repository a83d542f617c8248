package tis

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// MaxNameLen caps a normalized name, in bytes.
	MaxNameLen = 256
	// MaxEmailLen caps a normalized e-mail address, in bytes (RFC 5321).
	MaxEmailLen = 254
	// maxRawProperty caps a property as sent, before normalization.
	maxRawProperty = 1024
)

// NormalizeName returns the canonical form of a name: Unicode NFC, leading
// and trailing white space removed, inner runs of white space made one
// space. Case is kept. It fails with ErrBadProperties on an empty name,
// invalid UTF-8, control characters or a name over MaxNameLen.
func NormalizeName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("name is not UTF-8: %w", ErrBadProperties)
	}
	s = strings.Join(strings.Fields(norm.NFC.String(s)), " ")
	if s == "" {
		return "", fmt.Errorf("empty name: %w", ErrBadProperties)
	}
	if len(s) > MaxNameLen {
		return "", fmt.Errorf("name of %d bytes: %w", len(s), ErrBadProperties)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("control character in name: %w", ErrBadProperties)
	}
	return s, nil
}

// NormalizeEmail returns the canonical form of an e-mail address: Unicode
// NFC, trimmed, lower-cased as a whole (local parts are treated as case
// insensitive, as nearly every mail provider does). It requires one '@'
// with text on both sides and no white space or control characters.
func NormalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("e-mail is not UTF-8: %w", ErrBadProperties)
	}
	s = strings.ToLower(norm.NFC.String(strings.TrimSpace(s)))
	s = norm.NFC.String(s) // lower-casing may leave a non-NFC string
	if len(s) > MaxEmailLen {
		return "", fmt.Errorf("e-mail of %d bytes: %w", len(s), ErrBadProperties)
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return "", fmt.Errorf("e-mail needs one '@' between a local part and a domain: %w", ErrBadProperties)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", fmt.Errorf("white space or control character in e-mail: %w", ErrBadProperties)
	}
	return s, nil
}

// Labels of the keyed hashes. Each use of the TIS secret has its own, so
// no two derived values can be related without the secret.
const (
	labelNodeID       = "pikcio-tis/v1/node-id"
	labelMatryoshkaID = "pikcio-tis/v1/matryoshka-id"
	labelEmailIndex   = "pikcio-tis/v1/email-index"
	labelBinding      = "pikcio-tis/v1/binding"
	labelKeyIndex     = "pikcio-tis/v1/key-index"
)

// keyedHash is HMAC-SHA256 under secret of label and the length-prefixed
// fields, an unambiguous encoding.
func keyedHash(secret []byte, label string, fields ...[]byte) [32]byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(label))
	mac.Write([]byte{0})
	for _, f := range fields {
		mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		mac.Write(f)
	}
	var out [32]byte
	mac.Sum(out[:0])
	return out
}

// properties are normalized identity properties.
type properties struct {
	name, email string
}

func normalizeProperties(name, email string) (properties, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return properties{}, err
	}
	e, err := NormalizeEmail(email)
	if err != nil {
		return properties{}, err
	}
	return properties{name: n, email: e}, nil
}

func (p properties) nodeID(secret []byte) ID {
	return keyedHash(secret, labelNodeID, []byte(p.name), []byte(p.email))
}

func (p properties) matryoshkaID(secret []byte) ID {
	return keyedHash(secret, labelMatryoshkaID, []byte(p.name), []byte(p.email))
}

func (p properties) emailIndex(secret []byte) [32]byte {
	return keyedHash(secret, labelEmailIndex, []byte(p.email))
}

func (p properties) binding(secret []byte, nodeKey, matryoshkaKey []byte) [32]byte {
	return keyedHash(secret, labelBinding, []byte(p.name), []byte(p.email), nodeKey, matryoshkaKey)
}

func keyIndex(secret []byte, key []byte) [32]byte {
	return keyedHash(secret, labelKeyIndex, key)
}
