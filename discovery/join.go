package discovery

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/pikcio/pikcio/internal/sleep"
)

// Timings of Join.
const (
	// JoinTimeout bounds one attempt to join the DHT through the
	// bootstrap peers; failed attempts are retried after JoinBackoffMin,
	// doubling up to JoinBackoffMax.
	JoinTimeout    = 30 * time.Second
	JoinBackoffMin = time.Second
	JoinBackoffMax = 30 * time.Second
)

// Join starts d (Start), retrying with backoff while no bootstrap peer
// can be reached, until it succeeds or ctx ends (ctx's error). It dials
// the bootstrap peers even while libp2p backs off from them after failed
// attempts: Join has its own backoff. failed, if not nil, hears of each
// failed attempt and the wait before the next.
func (d *Discovery) Join(ctx context.Context, failed func(err error, retryIn time.Duration)) error {
	backoff := JoinBackoffMin
	for {
		jctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "pikcio bootstrap"), JoinTimeout)
		err := d.Start(jctx)
		cancel()
		if err == nil || errors.Is(err, ErrStarted) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if failed != nil {
			failed(err, backoff)
		}
		if !sleep.For(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, JoinBackoffMax)
	}
}
