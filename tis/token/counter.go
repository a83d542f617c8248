package token

import (
	"context"
	"sync"

	"github.com/pikcio/pikcio/tis"
)

// Counter counts the tokens issued to each enrollment in each period. The
// TIS's storage implements it; MemCounter keeps the counts in memory.
//
// A database implementation should store one row per (enrollment,
// period) keyed by SHA-256("pikcio-token-count-v1" || period || node ID)
// rather than by the node ID, so that a stolen table cannot join one
// enrollment's rows across periods, with the period (for clean-up) and the
// count. Take is one transaction: SELECT issued ... FOR UPDATE (or INSERT
// ... ON CONFLICT DO NOTHING first, for a new row), grant
// min(want, limit-issued), UPDATE, COMMIT; so two TIS processes sharing
// the database never grant past the limit. Rows of periods before the
// previous one can be deleted: nothing reads them again.
type Counter interface {
	// Take grants up to want more tokens to enrollment in period without
	// passing limit in total, and returns how many it granted and how
	// many remain after. Concurrent Takes never grant more than limit
	// together.
	Take(ctx context.Context, enrollment tis.ID, period int64, want, limit int) (granted, remaining int, err error)
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

// Take implements Counter.
func (c *MemCounter) Take(_ context.Context, enrollment tis.ID, period int64, want, limit int) (int, int, error) {
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
