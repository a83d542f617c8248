package token

import (
	"context"
	"sync"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// Counter counts the tokens issued to each enrollment in each period.
// *tis.Server keeps the counts in its store (one row per enrollment and
// period, keyed by a keyed hash of both, taken from in one transaction);
// MemCounter keeps them in memory, for tests.
type Counter interface {
	// TakeTokens grants up to want more tokens to enrollment in period
	// without passing limit in total, and returns how many it granted
	// and how many remain after. Concurrent calls, from any process
	// sharing the counts, never grant more than limit together.
	TakeTokens(ctx context.Context, enrollment tis.ID, period int64, want, limit int) (granted, remaining int, err error)
}

// KeyStore keeps the token private keys, one per period of span.
// *tis.Server keeps them in its store, sealed under a key derived from
// its secret, so that every server of one database signs a period with
// one key and a restart keeps it; MemKeys keeps them in memory, for
// tests.
type KeyStore interface {
	// TokenKey returns the private key (PKCS #1 DER) of period number
	// period of span. A period without one gets the key generate makes,
	// unless generate is nil (then TokenKey returns nil); of two
	// callers that race, both get the key stored first.
	TokenKey(ctx context.Context, span time.Duration, period int64, generate func() ([]byte, error)) ([]byte, error)
}

var (
	_ Counter  = (*tis.Server)(nil)
	_ KeyStore = (*tis.Server)(nil)
)

// MemKeys is a KeyStore in memory: a restarted issuer makes new keys.
type MemKeys struct {
	mu   sync.Mutex
	keys map[[2]int64][]byte
}

var _ KeyStore = (*MemKeys)(nil)

// TokenKey implements KeyStore.
func (m *MemKeys) TokenKey(_ context.Context, span time.Duration, period int64, generate func() ([]byte, error)) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]int64{int64(span), period}
	if b, ok := m.keys[k]; ok || generate == nil {
		return b, nil
	}
	b, err := generate()
	if err != nil {
		return nil, err
	}
	if m.keys == nil {
		m.keys = make(map[[2]int64][]byte)
	}
	for o := range m.keys {
		if o[0] == k[0] && o[1] < period-2 {
			delete(m.keys, o)
		}
	}
	m.keys[k] = b
	return b, nil
}

// MemCounter is a Counter in memory. It forgets the periods before the
// previous one of the latest period it was asked about.
type MemCounter struct {
	mu     sync.Mutex
	latest int64
	counts map[counterKey]int
}

type counterKey struct {
	period     int64
	enrollment tis.ID
}

var _ Counter = (*MemCounter)(nil)

// NewMemCounter returns an empty MemCounter.
func NewMemCounter() *MemCounter {
	return &MemCounter{counts: make(map[counterKey]int)}
}

// TakeTokens implements Counter.
func (c *MemCounter) TakeTokens(_ context.Context, enrollment tis.ID, period int64, want, limit int) (int, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if period > c.latest {
		c.latest = period
		for k := range c.counts {
			if k.period < period-1 {
				delete(c.counts, k)
			}
		}
	}
	k := counterKey{period, enrollment}
	used := c.counts[k]
	granted := min(max(want, 0), max(limit-used, 0))
	if granted > 0 {
		c.counts[k] = used + granted
	}
	return granted, limit - used - granted, nil
}
