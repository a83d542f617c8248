package tis

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pikcio/pikcio/internal/wire"
)

const (
	revocationVersion = 1
	// MaxRevoked caps the serials in one revocation list (512 KiB of
	// serials), keeping the list a reasonable DHT record.
	MaxRevoked = 1 << 15
	// MaxRevocationListSize caps an encoded revocation list.
	MaxRevocationListSize = 1 + 8 + 8 + 8 + 8 + 4 + MaxRevoked*len(Serial{}) + 2 + ed25519.SignatureSize
	// RevocationNamespace is the DHT record namespace of revocation lists.
	RevocationNamespace = "pikcio-tis-revocations"
)

// RevocationList is the TIS-signed list of revoked serials. A list with a
// higher Sequence replaces one with a lower.
type RevocationList struct {
	Issuer     KeyID
	Sequence   uint64
	IssuedAt   time.Time // whole seconds
	NextUpdate time.Time // whole seconds; a newer list is due by then
	Serials    []Serial  // strictly ascending
	Signature  []byte
}

func (l *RevocationList) body() ([]byte, error) {
	if len(l.Serials) > MaxRevoked {
		return nil, fmt.Errorf("revocation list of %d serials: %w", len(l.Serials), ErrMalformed)
	}
	if !validTime(l.IssuedAt) || !validTime(l.NextUpdate) || !l.NextUpdate.After(l.IssuedAt) {
		return nil, fmt.Errorf("revocation list times out of range or next update before issue: %w", ErrMalformed)
	}
	b := make([]byte, 0, 1+8+8+8+8+4+len(l.Serials)*len(Serial{})+2+ed25519.SignatureSize)
	b = append(b, revocationVersion)
	b = append(b, l.Issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, l.Sequence)
	b = binary.BigEndian.AppendUint64(b, uint64(l.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(l.NextUpdate.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Serials)))
	for i, s := range l.Serials {
		if i > 0 && bytes.Compare(l.Serials[i-1][:], s[:]) >= 0 {
			return nil, fmt.Errorf("revocation list serials not strictly ascending: %w", ErrMalformed)
		}
		b = append(b, s[:]...)
	}
	return b, nil
}

// Encode returns the canonical encoding of a signed list: the blob served
// over HTTP and suitable as a DHT record value.
func (l *RevocationList) Encode() ([]byte, error) {
	b, err := l.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, l.Signature, "revocation list", ErrMalformed)
}

func (l *RevocationList) sign(root ed25519.PrivateKey) error {
	l.Issuer = RootKeyID(root.Public().(ed25519.PublicKey))
	b, err := l.body()
	if err != nil {
		return err
	}
	l.Signature = wire.Sign(root, revocationContext, b)
	return nil
}

// DecodeRevocationList parses a canonical revocation list encoding. It
// checks the form only; call Verify to trust it.
func DecodeRevocationList(b []byte) (*RevocationList, error) {
	if len(b) > MaxRevocationListSize {
		return nil, fmt.Errorf("revocation list of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("revocation list version"); r.Err() == nil && v != revocationVersion {
		r.Fail("revocation list version %d", v)
	}
	l := &RevocationList{}
	copy(l.Issuer[:], r.Take(len(l.Issuer), "issuer"))
	l.Sequence = r.U64("sequence")
	l.IssuedAt = time.Unix(int64(r.U64("issue time")), 0).UTC()
	l.NextUpdate = time.Unix(int64(r.U64("next update")), 0).UTC()
	n := r.U32("serial count")
	if r.Err() == nil && n > MaxRevoked {
		r.Fail("%d serials", n)
	}
	if r.Err() == nil {
		raw := r.Take(int(n)*len(Serial{}), "serials")
		if r.Err() == nil && n > 0 {
			l.Serials = make([]Serial, n)
			for i := range l.Serials {
				copy(l.Serials[i][:], raw[i*len(Serial{}):])
			}
		}
	}
	l.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("revocation list")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := l.Encode(); err != nil {
		return nil, err
	}
	return l, nil
}

// Verify checks that root signed l. Freshness is separate (Stale): an old
// list still says which serials were revoked.
func (l *RevocationList) Verify(root ed25519.PublicKey) error {
	if l == nil {
		return fmt.Errorf("nil revocation list: %w", ErrMalformed)
	}
	if len(root) != ed25519.PublicKeySize {
		return fmt.Errorf("root key of %d bytes: %w", len(root), ErrMalformed)
	}
	if l.Issuer != RootKeyID(root) {
		return fmt.Errorf("revocation list from issuer %s: %w", l.Issuer, ErrUnknownIssuer)
	}
	b, err := l.body()
	if err != nil {
		return err
	}
	if !wire.Verify(root, revocationContext, b, l.Signature) {
		return fmt.Errorf("revocation list %d: %w", l.Sequence, ErrSignature)
	}
	return nil
}

// Stale reports whether a newer list was due by now.
func (l *RevocationList) Stale(now time.Time) bool {
	return l == nil || !now.Before(l.NextUpdate)
}

// Revoked reports whether s is on the list. A nil list revokes nothing.
func (l *RevocationList) Revoked(s Serial) bool {
	if l == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(l.Serials, s, func(a, b Serial) int { return bytes.Compare(a[:], b[:]) })
	return found
}

// ParseRevocationList decodes and verifies an encoded list.
func ParseRevocationList(b []byte, root ed25519.PublicKey) (*RevocationList, error) {
	l, err := DecodeRevocationList(b)
	if err != nil {
		return nil, err
	}
	if err := l.Verify(root); err != nil {
		return nil, err
	}
	return l, nil
}

// RevocationKey is the DHT record key of the revocation list of root.
func RevocationKey(root ed25519.PublicKey) string {
	return "/" + RevocationNamespace + "/" + RootKeyID(root).String()
}

// RevocationValidator validates revocation list records the way a
// go-libp2p-record Validator does, for the namespace RevocationNamespace.
type RevocationValidator struct {
	Root ed25519.PublicKey
}

// Validate checks that value is a list signed by the root, under its key.
func (v RevocationValidator) Validate(key string, value []byte) error {
	if key != RevocationKey(v.Root) {
		return fmt.Errorf("revocation record key %q: %w", key, ErrUnknownIssuer)
	}
	_, err := ParseRevocationList(value, v.Root)
	return err
}

// Select returns the index of the valid list with the highest sequence
// number (the first of equals).
func (v RevocationValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	var firstErr error
	for i, val := range values {
		if err := v.Validate(key, val); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		l, _ := DecodeRevocationList(val)
		if best < 0 || l.Sequence > bestSeq {
			best, bestSeq = i, l.Sequence
		}
	}
	if best < 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("no revocation list: %w", ErrMalformed)
		}
		return 0, fmt.Errorf("select among %d revocation lists: %w", len(values), firstErr)
	}
	return best, nil
}

// RevocationCache holds the newest valid revocation list a client has seen.
// It is safe for concurrent use.
type RevocationCache struct {
	root ed25519.PublicKey
	mu   sync.RWMutex
	list *RevocationList
}

// NewRevocationCache returns an empty cache for lists signed by root.
func NewRevocationCache(root ed25519.PublicKey) *RevocationCache {
	return &RevocationCache{root: root}
}

// Update verifies an encoded list and keeps it if its sequence number is
// higher than the held list's. It reports whether the list replaced it.
func (c *RevocationCache) Update(data []byte) (bool, error) {
	l, err := ParseRevocationList(data, c.root)
	if err != nil {
		return false, fmt.Errorf("revocation list update: %w", err)
	}
	return c.Offer(l), nil
}

// Offer keeps l, which the caller verified, if it is newer than the held
// list, and reports whether it did.
func (c *RevocationCache) Offer(l *RevocationList) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil && l.Sequence <= c.list.Sequence {
		return false
	}
	c.list = l
	return true
}

// List returns the held list, or nil. It must not be modified.
func (c *RevocationCache) List() *RevocationList {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.list
}

// String is for logs.
func (l *RevocationList) String() string {
	if l == nil {
		return "revocation list <nil>"
	}
	return fmt.Sprintf("revocation list %d (%d serials, next update %s)", l.Sequence, len(l.Serials), l.NextUpdate.Format(time.RFC3339))
}
