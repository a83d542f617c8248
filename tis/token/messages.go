package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/internal/wire"
	"github.com/pikcio/pikcio/tis"
)

const (
	keyVersion      = 1
	keySetVersion   = 1
	tokenVersion    = 1
	requestVersion  = 1
	responseVersion = 1
	// seedSize is the random part of a token.
	seedSize = 32
	// maxGuard caps the guard peer ID a token is made for.
	maxGuard = 128
)

// Domain separation: what the token key signs (blindly) and what the node
// key signs in an issuance request.
var (
	tokenContext   = []byte("pikcio-admission-token-v1\x00")
	requestContext = []byte("pikcio-token-request-v1\x00")
)

// Sizes of the encodings, for readers that must cap what they read.
const (
	// MaxKeySize caps an encoded Key.
	MaxKeySize = 1 + 8 + 8 + 8 + 2 + maxPublicKey + 2 + ed25519.SignatureSize
	// MaxKeySetSize caps an encoded KeySet.
	MaxKeySetSize = 1 + 1 + MaxKeysPublished*(2+MaxKeySize)
	// MaxTokenSize caps an encoded Token (a 2048-bit key makes 323 bytes).
	MaxTokenSize = 1 + 32 + seedSize + 2 + maxModulus
	// MaxIssueRequestSize caps an encoded IssueRequest.
	MaxIssueRequestSize = 1 + 8 + 2 + tis.MaxCertificateSize + 32 + 8 + 2 + MaxBatch*(2+maxModulus) + 2 + ed25519.SignatureSize
	// MaxIssueResponseSize caps an encoded IssueResponse.
	MaxIssueResponseSize = 1 + 4 + 2 + MaxBatch*(2+maxModulus)
)

// KeyID names a token key: SHA-256 of its PKCS #1 DER public key.
type KeyID [32]byte

func (k KeyID) String() string { return hex.EncodeToString(k[:8]) }

// Key is the publication of one period's token key, signed by the TIS
// root (tis.Server.SignTokenKey): guards check tokens against it offline,
// and clients blind against it.
type Key struct {
	Issuer    tis.KeyID // the root that signed it
	Start     time.Time // whole seconds; the period is [Start, End)
	End       time.Time
	PublicKey *rsa.PublicKey
	Signature []byte

	der []byte // PKCS #1 DER of PublicKey
	id  KeyID
}

// newKey returns the unsigned publication of pub for [start, end).
func newKey(issuer tis.KeyID, start, end time.Time, pub *rsa.PublicKey) *Key {
	der := x509.MarshalPKCS1PublicKey(pub)
	return &Key{Issuer: issuer, Start: start.UTC(), End: end.UTC(), PublicKey: pub, der: der, id: sha256.Sum256(der)}
}

// ID returns the key's ID.
func (k *Key) ID() KeyID { return k.id }

func (k *Key) String() string { return k.id.String() }

// body is the signed part of the encoding.
func (k *Key) body() ([]byte, error) {
	if k.PublicKey == nil || len(k.der) == 0 || !k.End.After(k.Start) || k.Start.Unix() < 0 || k.End.Unix() >= wire.MaxUnix {
		return nil, fmt.Errorf("token key: %w", ErrMalformed)
	}
	b := make([]byte, 0, MaxKeySize)
	b = append(b, keyVersion)
	b = append(b, k.Issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(k.Start.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(k.End.Unix()))
	return wire.AppendBytes16(b, k.der), nil
}

// Encode returns the canonical encoding of a signed key.
func (k *Key) Encode() ([]byte, error) {
	b, err := k.body()
	if err != nil {
		return nil, err
	}
	if len(k.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("token key signature of %d bytes: %w", len(k.Signature), ErrMalformed)
	}
	return wire.AppendBytes16(b, k.Signature), nil
}

// DecodeKey parses an encoded key and checks the RSA key's form (modulus
// of MinKeyBits to MaxKeyBits, exponent 65537). Call Verify to trust it.
func DecodeKey(b []byte) (*Key, error) {
	if len(b) > MaxKeySize {
		return nil, fmt.Errorf("token key of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("token key version"); r.Err() == nil && v != keyVersion {
		r.Fail("token key version %d", v)
	}
	var issuer tis.KeyID
	copy(issuer[:], r.Take(len(issuer), "issuer"))
	start := r.Time("start")
	end := r.Time("end")
	der := r.Bytes16("public key", maxPublicKey)
	sig := r.Bytes16("signature", ed25519.SignatureSize)
	r.End("token key")
	if r.Err() != nil {
		return nil, r.Err()
	}
	pub, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("token public key: %w: %w", ErrMalformed, err)
	}
	if n := pub.N.BitLen(); n < MinKeyBits || n > MaxKeyBits || pub.E != 65537 {
		return nil, fmt.Errorf("token public key of %d bits, exponent %d: %w", n, pub.E, ErrMalformed)
	}
	k := newKey(issuer, start, end, pub)
	k.Signature = sig
	enc, err := k.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("token key not canonical: %w", ErrMalformed)
	}
	return k, nil
}

// Verify checks that root signed k. It returns ErrUnknownKey (another
// TIS) or tis.ErrSignature, wrapped.
func (k *Key) Verify(root ed25519.PublicKey) error {
	if k.Issuer != tis.RootKeyID(root) {
		return fmt.Errorf("token key %s of TIS %s: %w", k.id, k.Issuer, ErrUnknownKey)
	}
	b, err := k.body()
	if err != nil {
		return err
	}
	if err := tis.VerifyTokenKey(root, b, k.Signature); err != nil {
		return fmt.Errorf("token key %s: %w", k.id, err)
	}
	return nil
}

// overlaps reports whether the periods of k and o overlap.
func (k *Key) overlaps(o *Key) bool {
	return k.Start.Before(o.End) && o.Start.Before(k.End)
}

// EncodeKeySet encodes the keys an issuer publishes.
func EncodeKeySet(keys []*Key) ([]byte, error) {
	if len(keys) > MaxKeysPublished {
		return nil, fmt.Errorf("%d token keys: %w", len(keys), ErrMalformed)
	}
	b := []byte{keySetVersion, byte(len(keys))}
	for _, k := range keys {
		e, err := k.Encode()
		if err != nil {
			return nil, err
		}
		b = wire.AppendBytes16(b, e)
	}
	return b, nil
}

// DecodeKeySet parses an encoded key set (form only: verify each key).
func DecodeKeySet(b []byte) ([]*Key, error) {
	if len(b) > MaxKeySetSize {
		return nil, fmt.Errorf("token key set of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("key set version"); r.Err() == nil && v != keySetVersion {
		r.Fail("key set version %d", v)
	}
	n := int(r.U8("key count"))
	if r.Err() == nil && n > MaxKeysPublished {
		r.Fail("%d keys", n)
	}
	raw := make([][]byte, 0, MaxKeysPublished)
	for i := 0; i < n && r.Err() == nil; i++ {
		raw = append(raw, r.Bytes16("key", MaxKeySize))
	}
	r.End("key set")
	if r.Err() != nil {
		return nil, r.Err()
	}
	keys := make([]*Key, 0, n)
	for _, e := range raw {
		k, err := DecodeKey(e)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Token is an anonymous admission token for one guard: a random seed and
// the token key's RSA signature of it and of the guard's peer ID, made
// blind (RFC 9474) so the TIS never saw either. The guard is not in the
// token: the guard that checks it supplies its own ID, so a token made for
// one guard fails as forged at every other.
type Token struct {
	Key       KeyID
	Seed      [seedSize]byte
	Signature []byte
}

// message is what the token key signs (blindly): the context, the key ID,
// the guard and the seed.
func message(key KeyID, guard peer.ID, seed []byte) []byte {
	b := make([]byte, 0, len(tokenContext)+len(key)+2+len(guard)+len(seed))
	b = append(b, tokenContext...)
	b = append(b, key[:]...)
	b = wire.AppendBytes16(b, []byte(guard))
	return append(b, seed...)
}

// Encode returns the token's canonical encoding.
func (t *Token) Encode() ([]byte, error) {
	if len(t.Signature) == 0 || len(t.Signature) > maxModulus {
		return nil, fmt.Errorf("token signature of %d bytes: %w", len(t.Signature), ErrMalformed)
	}
	b := make([]byte, 0, 1+len(t.Key)+len(t.Seed)+2+len(t.Signature))
	b = append(b, tokenVersion)
	b = append(b, t.Key[:]...)
	b = append(b, t.Seed[:]...)
	return wire.AppendBytes16(b, t.Signature), nil
}

// DecodeToken parses an encoded token (form only: Redeemer.Redeem
// verifies it).
func DecodeToken(b []byte) (*Token, error) {
	if len(b) > MaxTokenSize {
		return nil, fmt.Errorf("token of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("token version"); r.Err() == nil && v != tokenVersion {
		r.Fail("token version %d", v)
	}
	t := &Token{}
	copy(t.Key[:], r.Take(len(t.Key), "key ID"))
	copy(t.Seed[:], r.Take(len(t.Seed), "seed"))
	t.Signature = r.Bytes16("signature", maxModulus)
	r.End("token")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if len(t.Signature) == 0 {
		return nil, fmt.Errorf("token without signature: %w", ErrMalformed)
	}
	return t, nil
}

// IssueRequest is an enrolled node's request for tokens: blinded messages
// for the current token key, authenticated by the node's certificate and
// a signature of its node key.
type IssueRequest struct {
	Root      tis.KeyID        // the TIS it is meant for
	NodeCert  *tis.Certificate // the node certificate of the enrollment
	Key       KeyID            // the token key to sign under
	Time      time.Time        // whole seconds
	Blinded   [][]byte         // 1 to MaxBatch blinded messages
	Signature []byte           // by the node key
}

func (q *IssueRequest) body() ([]byte, error) {
	if q.NodeCert == nil || len(q.Blinded) == 0 || len(q.Blinded) > MaxBatch || q.Time.Unix() < 0 || q.Time.Unix() >= wire.MaxUnix {
		return nil, fmt.Errorf("token request: %w", ErrMalformed)
	}
	cert, err := q.NodeCert.Encode()
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	b := []byte{requestVersion}
	b = append(b, q.Root[:]...)
	b = wire.AppendBytes16(b, cert)
	b = append(b, q.Key[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(q.Time.Unix()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(q.Blinded)))
	for _, m := range q.Blinded {
		if len(m) == 0 || len(m) > maxModulus {
			return nil, fmt.Errorf("blinded message of %d bytes: %w", len(m), ErrMalformed)
		}
		b = wire.AppendBytes16(b, m)
	}
	return b, nil
}

// signed is what the node key signs.
func (q *IssueRequest) signed() ([]byte, error) {
	b, err := q.body()
	if err != nil {
		return nil, err
	}
	return append(bytes.Clone(requestContext), b...), nil
}

// Encode returns the request's canonical encoding.
func (q *IssueRequest) Encode() ([]byte, error) {
	b, err := q.body()
	if err != nil {
		return nil, err
	}
	if len(q.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("token request signature of %d bytes: %w", len(q.Signature), ErrMalformed)
	}
	return wire.AppendBytes16(b, q.Signature), nil
}

// DecodeIssueRequest parses a request (form only).
func DecodeIssueRequest(b []byte) (*IssueRequest, error) {
	if len(b) > MaxIssueRequestSize {
		return nil, fmt.Errorf("token request of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("token request version"); r.Err() == nil && v != requestVersion {
		r.Fail("token request version %d", v)
	}
	q := &IssueRequest{}
	copy(q.Root[:], r.Take(len(q.Root), "root"))
	cert := r.Bytes16("node certificate", tis.MaxCertificateSize)
	copy(q.Key[:], r.Take(len(q.Key), "key ID"))
	q.Time = r.Time("time")
	n := int(r.U16("count"))
	if r.Err() == nil && (n == 0 || n > MaxBatch) {
		r.Fail("%d blinded messages", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		q.Blinded = append(q.Blinded, r.Bytes16("blinded message", maxModulus))
	}
	q.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("token request")
	if r.Err() != nil {
		return nil, r.Err()
	}
	c, err := tis.DecodeCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("token request: %w: %w", ErrMalformed, err)
	}
	q.NodeCert = c
	enc, err := q.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("token request not canonical: %w", ErrMalformed)
	}
	return q, nil
}

// IssueResponse answers an IssueRequest: blind signatures of the first
// len(Signatures) blinded messages (fewer than asked when the enrollment
// reaches its limit), and how many more the period allows.
type IssueResponse struct {
	Remaining  uint32
	Signatures [][]byte
}

// Encode returns the response's canonical encoding.
func (p *IssueResponse) Encode() ([]byte, error) {
	if len(p.Signatures) == 0 || len(p.Signatures) > MaxBatch {
		return nil, fmt.Errorf("token response of %d signatures: %w", len(p.Signatures), ErrMalformed)
	}
	b := []byte{responseVersion}
	b = binary.BigEndian.AppendUint32(b, p.Remaining)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Signatures)))
	for _, s := range p.Signatures {
		if len(s) == 0 || len(s) > maxModulus {
			return nil, fmt.Errorf("blind signature of %d bytes: %w", len(s), ErrMalformed)
		}
		b = wire.AppendBytes16(b, s)
	}
	return b, nil
}

// DecodeIssueResponse parses a response (form only).
func DecodeIssueResponse(b []byte) (*IssueResponse, error) {
	if len(b) > MaxIssueResponseSize {
		return nil, fmt.Errorf("token response of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("token response version"); r.Err() == nil && v != responseVersion {
		r.Fail("token response version %d", v)
	}
	p := &IssueResponse{Remaining: r.U32("remaining")}
	n := int(r.U16("count"))
	if r.Err() == nil && (n == 0 || n > MaxBatch) {
		r.Fail("%d signatures", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		p.Signatures = append(p.Signatures, r.Bytes16("blind signature", maxModulus))
	}
	r.End("token response")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := p.Encode(); err != nil {
		return nil, err
	}
	return p, nil
}
