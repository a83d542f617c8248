package trust

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// Defaults of a View, in one place.
const (
	// DefaultMaxIdentities bounds a crawl.
	DefaultMaxIdentities = 10000
	// DefaultCrawlParallel is how many bundles a crawl fetches at once.
	DefaultCrawlParallel = 8
	// DefaultFetchTimeout bounds the fetch of one record.
	DefaultFetchTimeout = 15 * time.Second
)

// Getter fetches a DHT record (the discovery package's Discovery).
type Getter interface {
	GetRecord(ctx context.Context, key string) ([]byte, error)
}

// ViewOptions configure a View.
type ViewOptions struct {
	// Root is the TIS root key.
	Root ed25519.PublicKey
	// Attesters are the keys whose attestations count, besides Root.
	Attesters []ed25519.PublicKey
	// Revocations gives the newest revocation list (may be nil).
	Revocations func() *tis.RevocationList
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxIdentities bounds a crawl (default DefaultMaxIdentities).
	MaxIdentities int
	// Parallel is the number of concurrent fetches (DefaultCrawlParallel).
	Parallel int
	// FetchTimeout bounds one fetch (DefaultFetchTimeout).
	FetchTimeout time.Duration
	// Compute are the TCI options; Seeds and Now are set by the View.
	Compute Options
}

// View is one node's view of the trust records of the network and the
// TCI it computes from them. Refresh crawls the DHT from the TIS's seed
// list along vouches; nodes that see the same records compute the same
// scores. A View keeps the newest bundle it has seen of each identity and
// never goes back to an older one, so a replayed old bundle (one without
// a later withdrawal, say) is ignored. Safe for concurrent use.
type View struct {
	opts ViewOptions

	mu      sync.Mutex
	bundles map[tis.ID]*Bundle
	encoded map[tis.ID][]byte
	seeds   *tis.SeedList
	scores  *Scores
	updated time.Time
}

// NewView returns an empty view.
func NewView(opts ViewOptions) *View {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxIdentities <= 0 {
		opts.MaxIdentities = DefaultMaxIdentities
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultCrawlParallel
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	return &View{opts: opts, bundles: map[tis.ID]*Bundle{}, encoded: map[tis.ID][]byte{}}
}

func (v *View) revocations() *tis.RevocationList {
	if v.opts.Revocations != nil {
		return v.opts.Revocations()
	}
	return nil
}

// Root is the TIS root key the view checks records against.
func (v *View) Root() ed25519.PublicKey { return v.opts.Root }

// Offer adds a bundle the node got other than through a crawl (its own),
// if it verifies and is newer than the one held. It reports whether the
// bundle was taken.
func (v *View) Offer(data []byte) (bool, error) {
	b, err := DecodeBundle(data)
	if err != nil {
		return false, err
	}
	if err := b.Verify(v.opts.Root, v.opts.Now(), v.revocations()); err != nil {
		return false, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.offerLocked(b, data), nil
}

func (v *View) offerLocked(b *Bundle, data []byte) bool {
	id := b.Owner()
	if old, ok := v.bundles[id]; ok && !newer(b, old, data, v.encoded[id]) {
		return false
	}
	v.bundles[id] = b
	v.encoded[id] = slices.Clone(data)
	return true
}

// OfferSeeds sets the seed list if it verifies and is newer.
func (v *View) OfferSeeds(data []byte) (bool, error) {
	l, err := tis.DecodeSeedList(data)
	if err != nil {
		return false, err
	}
	if err := l.Verify(v.opts.Root, v.opts.Now()); err != nil {
		return false, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seeds != nil && !l.IssuedAt.After(v.seeds.IssuedAt) {
		return false, nil
	}
	v.seeds = l
	return true, nil
}

// Refresh fetches the seed list and crawls bundles through g, from the
// seeds and from extra (the node's own identity and contacts) along
// vouches, up to MaxIdentities identities, then recomputes the scores.
// Fetch failures keep what the view held; Refresh fails only when ctx
// ends first.
func (v *View) Refresh(ctx context.Context, g Getter, extra []tis.ID) error {
	if data, err := v.fetch(ctx, g, SeedsKey(v.opts.Root)); err == nil {
		_, _ = v.OfferSeeds(data)
	}
	v.mu.Lock()
	var start []tis.ID
	if v.seeds != nil {
		start = append(start, v.seeds.Seeds...)
	}
	v.mu.Unlock()
	start = append(start, extra...)

	seen := map[tis.ID]bool{}
	queue := []tis.ID{}
	add := func(id tis.ID) {
		if !seen[id] && len(seen) < v.opts.MaxIdentities {
			seen[id] = true
			queue = append(queue, id)
		}
	}
	for _, id := range start {
		add(id)
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("trust crawl: %w", err)
		}
		batch := queue
		queue = nil
		v.fetchBundles(ctx, g, batch)
		v.mu.Lock()
		for _, id := range batch {
			if b := v.bundles[id]; b != nil {
				for _, vo := range b.Vouches {
					add(vo.Vouchee)
				}
			}
		}
		v.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("trust crawl: %w", err)
	}
	v.Recompute()
	return nil
}

func (v *View) fetch(ctx context.Context, g Getter, key string) ([]byte, error) {
	fctx, cancel := context.WithTimeout(ctx, v.opts.FetchTimeout)
	defer cancel()
	return g.GetRecord(fctx, key)
}

// fetchBundles fetches the bundles of ids, Parallel at a time.
func (v *View) fetchBundles(ctx context.Context, g Getter, ids []tis.ID) {
	sem := make(chan struct{}, v.opts.Parallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data, err := v.fetch(ctx, g, BundleKey(id))
			if err != nil {
				return
			}
			if b, err := DecodeBundle(data); err == nil && b.Owner() == id {
				if b.Verify(v.opts.Root, v.opts.Now(), v.revocations()) == nil {
					v.mu.Lock()
					v.offerLocked(b, data)
					v.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

func (v *View) recordsLocked(now time.Time) Records {
	attesters := append([]ed25519.PublicKey{v.opts.Root}, v.opts.Attesters...)
	revs := v.revocations()
	var all Records
	for _, b := range v.bundles {
		if b.Cert.Verify(v.opts.Root, now) != nil || revs != nil && revs.Revoked(b.Cert.Serial) {
			continue
		}
		r := b.Records(v.opts.Root, attesters, now, revs)
		all.Vouches = append(all.Vouches, r.Vouches...)
		all.Withdrawals = append(all.Withdrawals, r.Withdrawals...)
		all.Attestations = append(all.Attestations, r.Attestations...)
	}
	return all
}

// Recompute computes the scores from the held records at now.
func (v *View) Recompute() *Scores {
	v.mu.Lock()
	now := v.opts.Now()
	recs := v.recordsLocked(now)
	opts := v.opts.Compute
	opts.Now = now
	opts.Seeds = nil
	if v.seeds != nil {
		opts.Seeds = slices.Clone(v.seeds.Seeds)
	}
	v.mu.Unlock()
	s := Compute(recs, opts)
	v.mu.Lock()
	v.scores, v.updated = s, now
	v.mu.Unlock()
	return s
}

// Scores returns the last computed scores (nil before the first).
func (v *View) Scores() *Scores {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.scores
}

// Score returns id's last computed score; ok is false before the first
// computation.
func (v *View) Score(id tis.ID) (score int, ok bool) {
	s := v.Scores()
	if s == nil {
		return 0, false
	}
	return s.Score(id), true
}

// Updated is when the scores were last computed.
func (v *View) Updated() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.updated
}

// Seeds returns the seed list held (nil if none).
func (v *View) Seeds() []tis.ID {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seeds == nil {
		return nil
	}
	return slices.Clone(v.seeds.Seeds)
}

// Bundles is the number of bundles held.
func (v *View) Bundles() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.bundles)
}
