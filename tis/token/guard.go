package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/sleep"
	"github.com/pikcio/pikcio/tis"
)

// Guard is a relay's side of admission: a Redeemer whose keys it keeps
// fresh from the TIS. It fetches them every KeyRefresh (sooner after a
// failure), and at once, at most every MinKeyFetch, when a token names a
// key it does not hold (a new period's key, or a relay that started while
// the TIS was away): so a token of an unknown key costs a key fetch at
// most that often, whoever sends it.
type Guard struct {
	r     *Redeemer
	fetch func(ctx context.Context) ([]*Key, error)
	opts  GuardOptions
	log   *logrus.Entry

	fetchMu   sync.Mutex // one fetch at a time
	lastFetch time.Time  // under fetchMu

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewGuard returns the guard self's admission by the tokens of the TIS
// at baseURL with root key root, and starts its key refresh. Close stops
// it.
func NewGuard(baseURL string, root ed25519.PublicKey, self peer.ID, opts GuardOptions) *Guard {
	opts = opts.withDefaults()
	hc := opts.HTTP
	g := &Guard{
		r:     NewRedeemer(root, self, opts.Redeemer),
		fetch: func(ctx context.Context) ([]*Key, error) { return FetchKeys(ctx, hc, baseURL, root) },
		opts:  opts,
		log:   logrus.WithField("component", "token-guard"),
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(1)
	go g.keep()
	return g
}

// Redeem checks an encoded token made for this guard and marks it spent
// (Redeemer.Redeem). A token of a key the guard does not hold makes it
// fetch the keys first, unless it did less than MinKeyFetch ago.
func (g *Guard) Redeem(ctx context.Context, b []byte) error {
	err := g.r.Redeem(b, g.opts.Now())
	if !errors.Is(err, ErrUnknownKey) {
		return err
	}
	if ferr := g.refresh(ctx, g.opts.MinKeyFetch); ferr != nil {
		return fmt.Errorf("%w (fetching keys: %w)", err, ferr)
	}
	return g.r.Redeem(b, g.opts.Now())
}

// Keys returns the number of keys held and of tokens spent under them.
func (g *Guard) Keys() (keys, spent int) { return g.r.Keys() }

// refresh fetches the keys unless the last fetch is less than minAge ago.
func (g *Guard) refresh(ctx context.Context, minAge time.Duration) error {
	g.fetchMu.Lock()
	defer g.fetchMu.Unlock()
	if !g.lastFetch.IsZero() && g.opts.Now().Sub(g.lastFetch) < minAge {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, tis.DefaultClientTimeout)
	defer cancel()
	keys, err := g.fetch(ctx)
	if err != nil {
		if ctx.Err() == nil {
			g.lastFetch = g.opts.Now() // a TIS that fails is not asked again at once
		}
		return err
	}
	g.lastFetch = g.opts.Now()
	return g.r.AddKeys(keys, g.opts.Now())
}

// keep refreshes the keys until Close.
func (g *Guard) keep() {
	defer g.wg.Done()
	for {
		next := g.opts.KeyRefresh
		if err := g.refresh(g.ctx, 0); err != nil {
			if g.ctx.Err() != nil {
				return
			}
			g.log.WithError(err).Warn("fetch the TIS's token keys")
			next = min(next, tis.RecordRetry)
		}
		if !sleep.For(g.ctx, next) {
			return
		}
	}
}

// Close stops the key refresh and waits for it. It is idempotent.
func (g *Guard) Close() error {
	g.cancel()
	g.wg.Wait()
	return nil
}

// GuardOptions configure a Guard. The zero value is valid.
type GuardOptions struct {
	// KeyRefresh is how often the keys are fetched (default
	// DefaultKeyRefresh).
	KeyRefresh time.Duration
	// MinKeyFetch is the least time between two fetches caused by tokens
	// of unknown keys (default DefaultMinKeyFetch).
	MinKeyFetch time.Duration
	// Redeemer configures the spent-token cache.
	Redeemer RedeemerOptions
	// HTTP is the client for the TIS (nil: one with
	// tis.DefaultClientTimeout).
	HTTP *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o GuardOptions) withDefaults() GuardOptions {
	if o.KeyRefresh <= 0 {
		o.KeyRefresh = DefaultKeyRefresh
	}
	if o.MinKeyFetch <= 0 {
		o.MinKeyFetch = DefaultMinKeyFetch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
