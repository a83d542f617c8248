package trust

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
//
// A recompute never holds the lock that readers (Scores) take while it
// verifies or computes: it copies the list of bundles, works on the copy,
// and swaps the new scores in. Each bundle's signatures are checked once:
// the records that passed are kept by the SHA-256 of the bundle's bytes
// until a record of it could start to count (a vouch issued "in the
// future").
type View struct {
	opts ViewOptions

	mu      sync.Mutex
	bundles map[tis.ID]*Bundle
	encoded map[tis.ID][]byte
	hashes  map[tis.ID][32]byte
	seeds   *tis.SeedList
	scores  *Scores
	updated time.Time

	// recomputing serializes Recompute; verified is its cache.
	recomputing sync.Mutex
	verified    map[[32]byte]*verifiedBundle
	// verifications counts bundles whose records were verified (tests).
	verifications atomic.Int64
}

// verifiedBundle is what verifying a bundle's records found.
type verifiedBundle struct {
	recs Records
	// from and until bound when recs hold: before from the clock went
	// back; at until a record not yet valid when verified may count.
	from, until time.Time
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
	return &View{opts: opts, bundles: map[tis.ID]*Bundle{}, encoded: map[tis.ID][]byte{}, hashes: map[tis.ID][32]byte{}}
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
	v.hashes[id] = sha256.Sum256(data)
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
// seeds along vouches, up to MaxIdentities identities, then those of
// extra (the node's contacts and whom it vouches for) that it did not
// reach, then recomputes the scores. Fetch failures keep what the view
// held; Refresh fails only when ctx ends first.
//
// So that whoever serves the fetches (a relay at the end of a circuit)
// cannot tell a contact from any other identity: a contact the public
// graph reaches from the seeds is fetched when the crawl reaches it, like
// any other, and each wave of fetches goes in a random order. Only the
// identities no vouch leads to are fetched after the crawl, as the last
// wave; which those are, anyone holding the public records can tell.
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

	seen := map[tis.ID]bool{}
	queue := []tis.ID{}
	add := func(id tis.ID, always bool) {
		if !seen[id] && (always || len(seen) < v.opts.MaxIdentities) {
			seen[id] = true
			queue = append(queue, id)
		}
	}
	for _, id := range start {
		add(id, false)
	}
	extraAdded := false
	for {
		if len(queue) == 0 && !extraAdded {
			extraAdded = true
			for _, id := range extra {
				add(id, true)
			}
		}
		if len(queue) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("trust crawl: %w", err)
		}
		batch := queue
		queue = nil
		mrand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		v.fetchBundles(ctx, g, batch)
		v.mu.Lock()
		for _, id := range batch {
			if b := v.bundles[id]; b != nil {
				for _, vo := range b.Vouches {
					add(vo.Vouchee, false)
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

// vouchees are the identities the bundle held of id vouches for.
func (v *View) vouchees(id tis.ID) []tis.ID {
	v.mu.Lock()
	defer v.mu.Unlock()
	b := v.bundles[id]
	if b == nil {
		return nil
	}
	out := make([]tis.ID, 0, len(b.Vouches))
	for _, vo := range b.Vouches {
		out = append(out, vo.Vouchee)
	}
	return out
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

// heldBundle is a bundle as a recompute found it.
type heldBundle struct {
	b    *Bundle
	hash [32]byte
}

// verify returns the records of b that verify at now (signatures checked
// against its certificate, which is checked against the root; revocations
// are checked by the caller on every recompute).
func (v *View) verify(b *Bundle, attesters []ed25519.PublicKey, now time.Time) *verifiedBundle {
	v.verifications.Add(1)
	e := &verifiedBundle{from: now, until: b.Cert.Expires}
	if b.Cert.Verify(v.opts.Root, now) != nil {
		e.until = now // never: verified again next time
		return e
	}
	e.recs = b.Records(v.opts.Root, attesters, now, nil)
	later := func(issued time.Time) {
		if at := issued.Add(-MaxClockSkew); at.After(now) && at.Before(e.until) {
			e.until = at
		}
	}
	for _, x := range b.Vouches {
		later(x.IssuedAt)
	}
	for _, x := range b.Withdrawals {
		later(x.IssuedAt)
	}
	for _, x := range b.Attestations {
		later(x.IssuedAt)
	}
	return e
}

// Recompute computes the scores from the held records at now, and swaps
// them in; Scores is not blocked meanwhile.
func (v *View) Recompute() *Scores {
	v.recomputing.Lock()
	defer v.recomputing.Unlock()
	v.mu.Lock()
	now := v.opts.Now()
	held := make([]heldBundle, 0, len(v.bundles))
	for id, b := range v.bundles {
		held = append(held, heldBundle{b, v.hashes[id]})
	}
	opts := v.opts.Compute
	opts.Now = now
	opts.Seeds = nil
	if v.seeds != nil {
		opts.Seeds = slices.Clone(v.seeds.Seeds)
	}
	v.mu.Unlock()

	attesters := append([]ed25519.PublicKey{v.opts.Root}, v.opts.Attesters...)
	revs := v.revocations()
	cache := make(map[[32]byte]*verifiedBundle, len(held))
	entries := make([]*verifiedBundle, len(held))
	var missing []int
	for i, h := range held {
		if e := v.verified[h.hash]; e != nil && !now.Before(e.from) && now.Before(e.until) {
			entries[i] = e
		} else {
			missing = append(missing, i)
		}
	}
	// Verify what is new, on every CPU.
	workers := min(runtime.GOMAXPROCS(0), max(1, len(missing)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(missing); k += workers {
				i := missing[k]
				entries[i] = v.verify(held[i].b, attesters, now)
			}
		}()
	}
	wg.Wait()
	var all Records
	for i, h := range held {
		e := entries[i]
		cache[h.hash] = e
		// The certificate's window and revocation change without the
		// bundle changing: checked every time (no signature involved).
		c := h.b.Cert
		if !inWindow(c.IssuedAt, c.Expires, now) || revs != nil && revs.Revoked(c.Serial) {
			continue
		}
		all.Vouches = append(all.Vouches, e.recs.Vouches...)
		all.Withdrawals = append(all.Withdrawals, e.recs.Withdrawals...)
		all.Attestations = append(all.Attestations, e.recs.Attestations...)
	}
	v.verified = cache
	s := Compute(all, opts)
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
