package trust

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	record "github.com/libp2p/go-libp2p-record"

	"github.com/pikcio/pikcio/tis"
)

// Namespace is the DHT record namespace of trust records. Keys are
// BundleKey and SeedsKey; only pikcio's own DHT holds them.
const Namespace = "pikcio-trust"

const (
	bundlePrefix = "/" + Namespace + "/b/"
	seedsPrefix  = "/" + Namespace + "/s/"
)

// BundleKey is the DHT key of the bundle of Matryoshka identity id.
func BundleKey(id tis.ID) string { return bundlePrefix + hex.EncodeToString(id[:]) }

// SeedsKey is the DHT key of the seed list of the TIS with root key root.
func SeedsKey(root ed25519.PublicKey) string {
	id := tis.RootKeyID(root)
	return seedsPrefix + hex.EncodeToString(id[:])
}

// Validator is the DHT record validator of Namespace: a node stores and
// returns only bundles and seed lists that verify against the TIS root,
// under the key they belong to, and prefers the newest.
type Validator struct {
	Root ed25519.PublicKey
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Revocations gives the newest revocation list (nil or nil result:
	// none known).
	Revocations func() *tis.RevocationList
}

var _ record.Validator = Validator{}

func (v Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v Validator) revocations() *tis.RevocationList {
	if v.Revocations != nil {
		return v.Revocations()
	}
	return nil
}

// parse checks value under key and returns its issue time.
func (v Validator) parse(key string, value []byte) (time.Time, error) {
	switch {
	case strings.HasPrefix(key, bundlePrefix):
		b, err := DecodeBundle(value)
		if err != nil {
			return time.Time{}, err
		}
		if BundleKey(b.Owner()) != key {
			return time.Time{}, fmt.Errorf("bundle of %s under %s: %w", b.Owner(), key, ErrWrongIdentity)
		}
		if err := b.Verify(v.Root, v.now(), v.revocations()); err != nil {
			return time.Time{}, err
		}
		return b.IssuedAt, nil
	case key == SeedsKey(v.Root):
		l, err := tis.DecodeSeedList(value)
		if err != nil {
			return time.Time{}, err
		}
		if err := l.Verify(v.Root, v.now()); err != nil {
			return time.Time{}, err
		}
		return l.IssuedAt, nil
	}
	return time.Time{}, fmt.Errorf("trust record key %q: %w", key, ErrMalformed)
}

// Validate implements record.Validator.
func (v Validator) Validate(key string, value []byte) error {
	_, err := v.parse(key, value)
	return err
}

// Select implements record.Validator: the valid value issued last wins,
// ties going to the larger encoding, so that every node picks the same.
func (v Validator) Select(key string, values [][]byte) (int, error) {
	best, bestT := -1, time.Time{}
	for i, val := range values {
		t, err := v.parse(key, val)
		if err != nil {
			continue
		}
		if best < 0 || t.After(bestT) || t.Equal(bestT) && string(val) > string(values[best]) {
			best, bestT = i, t
		}
	}
	if best < 0 {
		return 0, errors.New("no valid trust record")
	}
	return best, nil
}
