package tis

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/pikcio/pikcio/internal/wire"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DescriptorExtension is the discovery descriptor extension type that
// carries a relay's encoded node certificate (EncodeCertificate).
const DescriptorExtension uint16 = 1

// CertType says which identifier a certificate binds.
type CertType uint8

const (
	// TypeNode binds a node ID to the node's libp2p public key.
	TypeNode CertType = 1
	// TypeMatryoshka binds a Matryoshka ID to the user's Matryoshka key.
	TypeMatryoshka CertType = 2
)

func (t CertType) String() string {
	switch t {
	case TypeNode:
		return "node"
	case TypeMatryoshka:
		return "matryoshka"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

const (
	certVersion = 1
	// keyEd25519 is the only subject key algorithm.
	keyEd25519 = 1
	// maxSubjectKey caps the subject key field (room for later algorithms).
	maxSubjectKey = 512
	// MaxCertificateSize caps an encoded certificate.
	MaxCertificateSize = 1 + 1 + 16 + 8 + 32 + 8 + 8 + 1 + 2 + maxSubjectKey + 2 + ed25519.SignatureSize
)

// Domain separation for the root's signatures.
var (
	certContext       = []byte("pikcio-tis-certificate-v1\x00")
	revocationContext = []byte("pikcio-tis-revocation-list-v1\x00")
)

// KeyID names a root key: the first 8 bytes of SHA-256 of the public key.
type KeyID [8]byte

// RootKeyID returns the key ID of root.
func RootKeyID(root ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(root)
	var id KeyID
	copy(id[:], sum[:])
	return id
}

func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// Serial is a certificate serial number: 128 random bits, so serials reveal
// neither the number of enrollments nor which two certificates were issued
// together.
type Serial [16]byte

func (s Serial) String() string { return hex.EncodeToString(s[:]) }

// ParseSerial parses the hex form of a serial.
func ParseSerial(s string) (Serial, error) {
	var out Serial
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(out) {
		return out, fmt.Errorf("serial %q: %w", s, ErrMalformed)
	}
	copy(out[:], b)
	return out, nil
}

// ID is a node ID or a Matryoshka ID: a keyed hash of the identity
// properties under the TIS secret.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Certificate binds an ID to a subject public key, signed by the TIS root.
type Certificate struct {
	Type       CertType
	Serial     Serial
	Issuer     KeyID
	ID         ID
	SubjectKey ed25519.PublicKey
	IssuedAt   time.Time // whole seconds
	Expires    time.Time // whole seconds, after IssuedAt
	Signature  []byte
}

// body is the signed part of the encoding.
func (c *Certificate) body() ([]byte, error) {
	if c.Type != TypeNode && c.Type != TypeMatryoshka {
		return nil, fmt.Errorf("certificate %s: %w", c.Type, ErrMalformed)
	}
	if len(c.SubjectKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("certificate subject key of %d bytes: %w", len(c.SubjectKey), ErrMalformed)
	}
	if !validTime(c.IssuedAt) || !validTime(c.Expires) || !c.Expires.After(c.IssuedAt) {
		return nil, fmt.Errorf("certificate times out of range or expiry before issue: %w", ErrMalformed)
	}
	b := make([]byte, 0, MaxCertificateSize)
	b = append(b, certVersion, byte(c.Type))
	b = append(b, c.Serial[:]...)
	b = append(b, c.Issuer[:]...)
	b = append(b, c.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	b = append(b, keyEd25519)
	b = wire.AppendBytes16(b, c.SubjectKey)
	return b, nil
}

// Encode returns the canonical encoding of a signed certificate.
func (c *Certificate) Encode() ([]byte, error) {
	b, err := c.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, c.Signature, "certificate", ErrMalformed)
}

// sign sets Issuer and Signature with the root private key.
func (c *Certificate) sign(root ed25519.PrivateKey) error {
	c.Issuer = RootKeyID(root.Public().(ed25519.PublicKey))
	b, err := c.body()
	if err != nil {
		return err
	}
	c.Signature = wire.Sign(root, certContext, b)
	return nil
}

// DecodeCertificate parses a canonical certificate encoding. It checks the
// form only; call Verify or VerifyNodeCert to trust it.
func DecodeCertificate(b []byte) (*Certificate, error) {
	if len(b) > MaxCertificateSize {
		return nil, fmt.Errorf("certificate of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("certificate version"); r.Err() == nil && v != certVersion {
		r.Fail("certificate version %d", v)
	}
	c := &Certificate{Type: CertType(r.U8("certificate type"))}
	copy(c.Serial[:], r.Take(len(c.Serial), "serial"))
	copy(c.Issuer[:], r.Take(len(c.Issuer), "issuer"))
	copy(c.ID[:], r.Take(len(c.ID), "id"))
	c.IssuedAt = time.Unix(int64(r.U64("issue time")), 0).UTC()
	c.Expires = time.Unix(int64(r.U64("expiry")), 0).UTC()
	if alg := r.U8("key algorithm"); r.Err() == nil && alg != keyEd25519 {
		r.Fail("key algorithm %d", alg)
	}
	c.SubjectKey = ed25519.PublicKey(r.Bytes16("subject key", maxSubjectKey))
	c.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("certificate")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := c.Encode(); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify checks that root signed c and that c is valid at now. It returns
// ErrUnknownIssuer, ErrSignature, ErrMalformed, ErrNotYetValid or
// ErrExpired (wrapped).
func (c *Certificate) Verify(root ed25519.PublicKey, now time.Time) error {
	if c == nil {
		return fmt.Errorf("nil certificate: %w", ErrMalformed)
	}
	if len(root) != ed25519.PublicKeySize {
		return fmt.Errorf("root key of %d bytes: %w", len(root), ErrMalformed)
	}
	if c.Issuer != RootKeyID(root) {
		return fmt.Errorf("%s certificate %s from issuer %s: %w", c.Type, c.Serial, c.Issuer, ErrUnknownIssuer)
	}
	b, err := c.body()
	if err != nil {
		return err
	}
	if !wire.Verify(root, certContext, b, c.Signature) {
		return fmt.Errorf("%s certificate %s: %w", c.Type, c.Serial, ErrSignature)
	}
	if now.Add(DefaultMaxClockSkew).Before(c.IssuedAt) {
		return fmt.Errorf("%s certificate %s issued at %s: %w", c.Type, c.Serial, c.IssuedAt, ErrNotYetValid)
	}
	if !now.Before(c.Expires) {
		return fmt.Errorf("%s certificate %s expired at %s: %w", c.Type, c.Serial, c.Expires, ErrExpired)
	}
	return nil
}

// PeerID returns the libp2p peer ID of the subject key.
func (c *Certificate) PeerID() (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(c.SubjectKey)
	if err != nil {
		return "", fmt.Errorf("subject key: %w", ErrMalformed)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("subject peer ID: %w", ErrMalformed)
	}
	return id, nil
}

// VerifyNodeCert checks that cert is a node certificate signed by root,
// valid at now, for the libp2p key of peer id, and not on revocations
// (which may be nil, and must have been verified against root). Errors wrap
// ErrWrongType, ErrUnknownIssuer, ErrSignature, ErrNotYetValid, ErrExpired,
// ErrWrongKey or ErrRevoked.
func VerifyNodeCert(cert *Certificate, root ed25519.PublicKey, id peer.ID, now time.Time, revocations *RevocationList) error {
	if cert == nil {
		return fmt.Errorf("nil certificate: %w", ErrMalformed)
	}
	if cert.Type != TypeNode {
		return fmt.Errorf("%s certificate where a node certificate is needed: %w", cert.Type, ErrWrongType)
	}
	if err := cert.Verify(root, now); err != nil {
		return err
	}
	subject, err := cert.PeerID()
	if err != nil {
		return err
	}
	if subject != id {
		return fmt.Errorf("node certificate %s is for another peer: %w", cert.Serial, ErrWrongKey)
	}
	if revocations.Revoked(cert.Serial) {
		return fmt.Errorf("node certificate %s: %w", cert.Serial, ErrRevoked)
	}
	return nil
}

// VerifyMatryoshkaCert is VerifyNodeCert for a Matryoshka certificate and
// the Matryoshka public key it must certify.
func VerifyMatryoshkaCert(cert *Certificate, root ed25519.PublicKey, key ed25519.PublicKey, now time.Time, revocations *RevocationList) error {
	if cert == nil {
		return fmt.Errorf("nil certificate: %w", ErrMalformed)
	}
	if cert.Type != TypeMatryoshka {
		return fmt.Errorf("%s certificate where a Matryoshka certificate is needed: %w", cert.Type, ErrWrongType)
	}
	if err := cert.Verify(root, now); err != nil {
		return err
	}
	if !key.Equal(cert.SubjectKey) {
		return fmt.Errorf("matryoshka certificate %s is for another key: %w", cert.Serial, ErrWrongKey)
	}
	if revocations.Revoked(cert.Serial) {
		return fmt.Errorf("matryoshka certificate %s: %w", cert.Serial, ErrRevoked)
	}
	return nil
}

// VerifyNodeCertBytes decodes an encoded node certificate (as carried in
// the DescriptorExtension of a discovery descriptor) and verifies it with
// VerifyNodeCert.
func VerifyNodeCertBytes(data []byte, root ed25519.PublicKey, id peer.ID, now time.Time, revocations *RevocationList) (*Certificate, error) {
	cert, err := DecodeCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	if err := VerifyNodeCert(cert, root, id, now, revocations); err != nil {
		return nil, err
	}
	return cert, nil
}
