package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
)

// Timings and weights of the trust wiring.
const (
	// ownCheck is how often the node looks for changes to its own trust
	// records (trust.OwnFile) and contacts, written by the CLI.
	ownCheck = 2 * time.Second
	// trustDHTTimeout bounds one PUT of a trust record.
	trustDHTTimeout = 30 * time.Second
	// relayScoreRetry is how soon a failed relay score fetch is retried.
	relayScoreRetry = 30 * time.Second
	// ContactGuardBoost multiplies the guard weight of a contact's relay
	// when trust.prefer_contact_guards is set.
	ContactGuardBoost = 20
)

// nodeTrust is the node's part in the trust system: its view of the TCI,
// its own published records, its contacts, the relay's score statement,
// and the weights path selection uses.
type nodeTrust struct {
	t        *nodeTIS
	dir      string
	nodeKey  crypto.PrivKey
	view     *trust.View
	contacts *trust.Contacts
	invites  *exchange.Service // nil until attached
	log      *logrus.Entry

	minGuard, minExit atomic.Int64
	preferContacts    atomic.Bool
	refresh           atomic.Int64 // time.Duration

	mu        sync.Mutex
	published time.Time // IssuedAt of the last bundle published
	putFailed bool      // the last PUT failed: try again at the next check
	ownStamp  time.Time // mtime of OwnFile last published
	statement []byte    // the relay's current score statement
	stParsed  *trust.RelayScore
	relays    map[peer.ID]relayBand // verified statements of relays
}

// relayBand is a relay's verified score statement.
type relayBand struct {
	raw     string
	band    uint8
	expires time.Time
	ok      bool
}

// newNodeTrust prepares the trust wiring of an enrolled node; view, when
// not nil, is used instead of a fresh one (the demo shares its TIS's).
func newNodeTrust(t *nodeTIS, dir string, nodeKey crypto.PrivKey, cfg config.TrustConfig, view *trust.View) (*nodeTrust, error) {
	attesters := []ed25519.PublicKey{}
	for _, a := range cfg.Attesters {
		k, err := tis.ParseKey(a)
		if err != nil {
			return nil, fmt.Errorf("trust.attesters: %w", err)
		}
		attesters = append(attesters, k)
	}
	if view == nil {
		view = trust.NewView(trust.ViewOptions{Root: t.root, Attesters: attesters, Revocations: t.revs.List})
	}
	contacts, err := trust.OpenContacts(dir, t.root)
	if err != nil {
		return nil, err
	}
	nt := &nodeTrust{
		t:        t,
		dir:      dir,
		nodeKey:  nodeKey,
		view:     view,
		contacts: contacts,
		log:      logrus.WithField("component", "trust"),
		relays:   map[peer.ID]relayBand{},
	}
	nt.apply(cfg)
	return nt, nil
}

// apply takes the [trust] settings that can change while running.
func (nt *nodeTrust) apply(cfg config.TrustConfig) {
	nt.minGuard.Store(int64(cfg.MinGuardScore))
	nt.minExit.Store(int64(cfg.MinExitScore))
	nt.preferContacts.Store(cfg.PreferContactGuards)
	nt.refresh.Store(int64(cfg.Refresh.D()))
}

// self is the node's own identity for contact exchanges.
func (nt *nodeTrust) self() exchange.Self {
	return exchange.Self{MatryoshkaCert: nt.t.en.MatryoshkaCert, NodeCert: nt.t.en.NodeCert, MatryoshkaKey: nt.t.mkey}
}

// validator is the DHT validator of trust records.
func (nt *nodeTrust) validator() trust.Validator {
	return trust.Validator{Root: nt.t.root, Revocations: nt.t.revs.List}
}

// keep runs the trust loops until ctx ends: the seed list from the TIS
// into the DHT, the node's own bundle into the DHT when it changes and
// every refresh, and the crawl that recomputes the scores.
func (nt *nodeTrust) keep(ctx context.Context, dht recordStore) {
	var lastCrawl, lastSeeds time.Time
	for {
		refresh := time.Duration(nt.refresh.Load())
		if err := nt.contacts.ReloadIfChanged(); err != nil {
			nt.log.WithError(err).Warn("reload contacts")
		}
		if nt.t.url != "" && time.Since(lastSeeds) >= refresh {
			if err := nt.putSeeds(ctx, dht); err != nil {
				if ctx.Err() != nil {
					return
				}
				nt.log.WithError(err).Debug("seed list")
			} else {
				lastSeeds = time.Now()
			}
		}
		published, err := nt.publishOwn(ctx, dht, time.Since(lastCrawl) >= refresh)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			nt.log.WithError(err).Warn("publish own trust records")
		}
		if published || time.Since(lastCrawl) >= refresh {
			extra := []tis.ID{nt.t.en.MatryoshkaCert.ID}
			for _, c := range nt.contacts.List() {
				extra = append(extra, c.ID)
			}
			if err := nt.view.Refresh(ctx, dht, extra); err != nil {
				return
			}
			lastCrawl = time.Now()
			s := nt.view.Scores()
			nt.log.WithField("identities", s.Len()).Debug("trust scores computed")
		}
		if !sleep(ctx, ownCheck) {
			return
		}
	}
}

// putSeeds fetches the TIS's seed list and puts it into the DHT.
func (nt *nodeTrust) putSeeds(ctx context.Context, dht recordStore) error {
	fctx, cancel := context.WithTimeout(ctx, tis.DefaultClientTimeout)
	defer cancel()
	_, data, err := tis.NewClient(nt.t.url, nt.t.root).FetchSeeds(fctx)
	if err != nil {
		return err
	}
	_, _ = nt.view.OfferSeeds(data)
	pctx, cancel2 := context.WithTimeout(ctx, trustDHTTimeout)
	defer cancel2()
	return dht.PutRecord(pctx, trust.SeedsKey(nt.t.root), data)
}

// publishOwn publishes the node's own bundle when OwnFile changed since
// the last time, or always with force. It reports whether it published.
func (nt *nodeTrust) publishOwn(ctx context.Context, dht recordStore, force bool) (bool, error) {
	var stamp time.Time
	fi, err := os.Stat(filepath.Join(nt.dir, trust.OwnFile))
	switch {
	case err == nil:
		stamp = fi.ModTime()
	case errors.Is(err, fs.ErrNotExist):
	default:
		return false, err
	}
	nt.mu.Lock()
	prev, same := nt.published, stamp.Equal(nt.ownStamp) && !nt.published.IsZero() && !nt.putFailed
	nt.mu.Unlock()
	if same && !force {
		return false, nil
	}
	own, err := trust.LoadOwn(nt.dir)
	if err != nil {
		return false, err
	}
	b, data, err := own.Bundle(nt.t.en.MatryoshkaCert, nt.t.mkey, time.Now(), prev)
	if err != nil {
		return false, err
	}
	if _, err := nt.view.Offer(data); err != nil {
		return false, fmt.Errorf("own bundle: %w", err)
	}
	nt.mu.Lock()
	nt.published, nt.ownStamp = b.IssuedAt, stamp
	nt.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, trustDHTTimeout)
	defer cancel()
	err = dht.PutRecord(pctx, trust.BundleKey(b.Owner()), data)
	nt.mu.Lock()
	nt.putFailed = err != nil
	nt.mu.Unlock()
	if err != nil {
		// Typically no DHT peer yet (the first node of a network): the
		// next check tries again.
		nt.log.WithError(err).Debug("put own bundle")
		return true, nil
	}
	nt.log.WithField("vouches", len(b.Vouches)).Debug("own trust records published")
	return true, nil
}

// keepRelayScore keeps the relay's score statement from the TIS fresh:
// it asks every trust.refresh, and takes (and republishes the descriptor
// with) a new statement when the band changed or the one it holds is past
// half its life.
func (nt *nodeTrust) keepRelayScore(ctx context.Context, republish func()) {
	for {
		refresh := time.Duration(nt.refresh.Load())
		next := min(relayScoreRetry, refresh)
		st, data, err := nt.fetchRelayScore(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			nt.log.WithError(err).Debug("relay score statement")
		} else {
			now := time.Now()
			nt.mu.Lock()
			old := nt.stParsed
			take := old == nil || old.Band != st.Band || now.After(old.IssuedAt.Add(old.Expires.Sub(old.IssuedAt)/2))
			if take {
				nt.statement, nt.stParsed = data, st
			}
			nt.mu.Unlock()
			if take {
				lo, hi := st.Range()
				nt.log.WithField("band", fmt.Sprintf("%d-%d", lo, hi)).Debug("relay trust statement from the TIS")
				republish()
			}
			next = min(refresh, st.Expires.Sub(st.IssuedAt)/2)
		}
		if !sleep(ctx, next) {
			return
		}
	}
}

func (nt *nodeTrust) fetchRelayScore(ctx context.Context) (*trust.RelayScore, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, tis.DefaultClientTimeout)
	defer cancel()
	c := tis.NewClient(nt.t.url, nt.t.root)
	data, err := c.FetchRelayScore(ctx, nt.nodeKey, nt.t.en.NodeCert, nt.t.mkey, nt.t.en.MatryoshkaCert)
	if err != nil {
		return nil, nil, err
	}
	st, err := trust.DecodeRelayScore(data)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Verify(nt.t.root, time.Now()); err != nil {
		return nil, nil, err
	}
	if st.Node != nt.t.en.NodeCert.ID {
		return nil, nil, fmt.Errorf("statement for node %s: %w", st.Node, trust.ErrWrongIdentity)
	}
	return st, data, nil
}

// extension is the descriptor extension with the relay's statement, if
// it holds a current one.
func (nt *nodeTrust) extension() (discovery.Extension, bool) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.stParsed == nil || !time.Now().Before(nt.stParsed.Expires) {
		return discovery.Extension{}, false
	}
	return discovery.Extension{Type: trust.DescriptorExtension, Data: nt.statement}, true
}

// ownBand is the relay's own current band.
func (nt *nodeTrust) ownBand() (lo, hi int, ok bool) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.stParsed == nil || !time.Now().Before(nt.stParsed.Expires) {
		return 0, 0, false
	}
	lo, hi = nt.stParsed.Range()
	return lo, hi, true
}

// band returns the verified score band of relay d: its statement must be
// signed by the TIS, current, and for the node ID of the relay's
// certificate.
func (nt *nodeTrust) band(d *discovery.Descriptor) (lo, hi int, ok bool) {
	data, has := d.Extension(trust.DescriptorExtension)
	if !has {
		return 0, 0, false
	}
	now := time.Now()
	nt.mu.Lock()
	rb, cached := nt.relays[d.PeerID]
	nt.mu.Unlock()
	if !cached || rb.raw != string(data) {
		rb = relayBand{raw: string(data)}
		st, err := trust.DecodeRelayScore(data)
		if err == nil {
			err = st.Verify(nt.t.root, now)
		}
		if err == nil {
			var cert []byte
			cert, has = d.Extension(tis.DescriptorExtension)
			var c *tis.Certificate
			if has {
				c, err = tis.VerifyNodeCertBytes(cert, nt.t.root, d.PeerID, now, nt.t.revs.List())
			}
			if has && err == nil && c.ID == st.Node {
				rb = relayBand{raw: string(data), band: st.Band, expires: st.Expires, ok: true}
			}
		}
		nt.mu.Lock()
		if len(nt.relays) >= maxPeerCerts {
			clear(nt.relays)
		}
		nt.relays[d.PeerID] = rb
		nt.mu.Unlock()
	}
	if !rb.ok || !now.Before(rb.expires) {
		return 0, 0, false
	}
	lo, hi = trust.BandRange(rb.band)
	return lo, hi, true
}

// Weight implements discovery.Weigher: relays are weighed by the middle
// of their operator's band (1 + score, so that relays without a statement
// keep weight 1), guards and exits below the configured minimum are
// excluded, and a contact's relay is ContactGuardBoost times more likely
// as a guard.
func (nt *nodeTrust) Weight(d *discovery.Descriptor, role discovery.Role) float64 {
	lo, hi, ok := nt.band(d)
	var minScore int64
	switch role {
	case discovery.RoleGuard:
		minScore = nt.minGuard.Load()
	case discovery.RoleExit:
		minScore = nt.minExit.Load()
	}
	if minScore > 0 && (!ok || int64(hi) < minScore) {
		return 0
	}
	w := 1.0
	if ok {
		w += float64(lo+hi) / 2
	}
	if role == discovery.RoleGuard && nt.preferContacts.Load() {
		if _, isContact := nt.contacts.ByNode(d.PeerID); isContact {
			w *= ContactGuardBoost
		}
	}
	return w
}

var _ discovery.Weigher = (*nodeTrust)(nil)
