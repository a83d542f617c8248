package service

import (
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	record "github.com/libp2p/go-libp2p-record"
)

// Namespace is the DHT record namespace of service descriptors.
const Namespace = "pikcio-svc"

const keyPrefix = "/" + Namespace + "/"

// DHTKey is where the descriptor of blinded key b for period p is stored:
// "/pikcio-svc/" | hex(SHA3-256("pikcio-svc store-at" | b | N)). A DHT
// server learns neither the address nor, from the key, the blinded key.
func DHTKey(b BlindedKey, p Period) string {
	h := sha3.New256()
	h.Write([]byte(Namespace + " store-at"))
	h.Write(b[:])
	h.Write(p.nonce())
	return keyPrefix + hex.EncodeToString(h.Sum(nil))
}

// KeyFor is the DHT key a client looks up for addr in period p.
func KeyFor(addr Address, p Period) string { return DHTKey(addr.Blind(p), p) }

// Validator is the libp2p record validator of Namespace. A DHT server
// keeps a descriptor only if its signature verifies under the blinded key
// it carries, it sits under that key's DHTKey, and its period is the
// current one, the one before or the one after (clock skew and periods
// turning over); Select prefers the highest revision.
type Validator struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// PeriodLength is the network's period (0: DefaultPeriodLength);
	// records with another length are refused.
	PeriodLength time.Duration
}

var _ record.Validator = Validator{}

func (v Validator) verify(key string, value []byte) (*Record, error) {
	if !strings.HasPrefix(key, keyPrefix) {
		return nil, fmt.Errorf("key not in /%s: %w", Namespace, ErrKeyMismatch)
	}
	rec, err := ParseRecord(value)
	if err != nil {
		return nil, err
	}
	if rec.Key() != key {
		return nil, ErrKeyMismatch
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	cur := PeriodAt(now, v.PeriodLength)
	if rec.Period.Length != cur.Length {
		return nil, fmt.Errorf("period length %s, want %s: %w", rec.Period.Length, cur.Length, ErrStale)
	}
	if rec.Period.Number+1 < cur.Number || rec.Period.Number > cur.Number+1 {
		return nil, fmt.Errorf("%s, now is %s: %w", rec.Period, cur, ErrStale)
	}
	return rec, nil
}

// Validate implements record.Validator.
func (v Validator) Validate(key string, value []byte) error {
	_, err := v.verify(key, value)
	return err
}

// Select implements record.Validator: the valid record with the highest
// revision wins; of equal revisions, the first.
func (v Validator) Select(key string, values [][]byte) (int, error) {
	best, bestIdx := uint64(0), -1
	for i, val := range values {
		rec, err := v.verify(key, val)
		if err != nil {
			continue
		}
		if bestIdx < 0 || rec.Revision > best {
			best, bestIdx = rec.Revision, i
		}
	}
	if bestIdx < 0 {
		return 0, errors.New("no valid service descriptor to select")
	}
	return bestIdx, nil
}
