package trust

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

	"github.com/pikcio/pikcio/internal/sleep"
	"github.com/pikcio/pikcio/tis"
)

// Timings and weights of the agent.
const (
	// ownCheck is how often the agent looks for changes to its own trust
	// records (OwnFile) and contacts, written by the CLI.
	ownCheck = 2 * time.Second
	// DefaultRefresh is how often the records are crawled and the own
	// records republished (trust.refresh).
	DefaultRefresh = 10 * time.Minute
	// ContactGuardBoost multiplies the guard weight of a contact's relay
	// when Settings.PreferContactGuards is set.
	ContactGuardBoost = 20
	// DefaultMinScore is the default of trust.min_guard_score and
	// trust.min_exit_score: once the TIS states a band for any relay
	// (Agent.Weight), a relay without a statement is not chosen as a guard
	// or an exit. Relays are cheap to multiply (one made-up e-mail each);
	// a statement ties one to a person whose trust the TIS vouches for.
	// A higher minimum also refuses low bands; 0 admits unscored relays.
	DefaultMinScore = 1
)

// Settings are the agent's settings that can change while it runs (the
// [trust] section).
type Settings struct {
	// MinGuardScore and MinExitScore exclude guards and exits whose
	// operator's band lies wholly below them, and, once any relay carries
	// a statement, those without one (0: no minimum; DefaultMinScore).
	MinGuardScore, MinExitScore int
	// PreferContactGuards makes a contact's relay ContactGuardBoost times
	// more likely as a guard.
	PreferContactGuards bool
	// Refresh is how often the records are crawled and the own bundle
	// and seed list republished.
	Refresh time.Duration
}

// Role is the position a relay is weighed for (Weight).
type Role uint8

// Roles.
const (
	RoleGuard Role = iota
	RoleMiddle
	RoleExit
)

// Relay is what the agent reads of a relay's descriptor: its peer ID and
// its two extensions (nil when absent).
type Relay struct {
	ID peer.ID
	// Cert is its tis.DescriptorExtension, Statement its
	// DescriptorExtension.
	Cert, Statement []byte
}

// Agent is an enrolled node's part in the trust system: its view of the
// TCI, its own published records, its contacts, a relay's own score
// statement, and the weights path selection uses. It works on a
// tis.RecordStore (the DHT).
type Agent struct {
	tis      *tis.Agent
	dir      string
	nodeKey  crypto.PrivKey
	view     *View
	contacts *Contacts
	log      *logrus.Entry

	minGuard, minExit atomic.Int64
	// banded is set by Weight once a relay carries a band statement: from
	// then on the TIS states bands, and unscored relays are not guards or
	// exits under a minimum.
	banded         atomic.Bool
	preferContacts atomic.Bool
	refresh        atomic.Int64 // time.Duration

	mu        sync.Mutex
	published time.Time // IssuedAt of the last bundle published
	putFailed bool      // the last PUT failed: try again at the next check
	ownStamp  time.Time // mtime of OwnFile last published
	statement []byte    // the relay's current score statement
	stParsed  *RelayScore
	relays    map[peer.ID]relayBand // verified statements of relays
}

// relayBand is a relay's verified score statement, cached under the
// certificate and statement it was checked from.
type relayBand struct {
	cert, statement string
	serial          tis.Serial // of the certificate, checked against each newer revocation list
	band            uint8
	expires         time.Time
	ok              bool
}

// NewAgent prepares the trust agent of the node enrolled as ta, whose data
// directory is dir and node key nodeKey; view, when not nil, is used
// instead of a fresh one (the demo shares its TIS's).
func NewAgent(ta *tis.Agent, dir string, nodeKey crypto.PrivKey, attesters []ed25519.PublicKey, s Settings, view *View) (*Agent, error) {
	if view == nil {
		view = NewView(ViewOptions{Root: ta.Root(), Attesters: attesters, Revocations: ta.Revocations})
	}
	contacts, err := OpenContacts(dir, ta.Root())
	if err != nil {
		return nil, err
	}
	a := &Agent{
		tis:      ta,
		dir:      dir,
		nodeKey:  nodeKey,
		view:     view,
		contacts: contacts,
		log:      logrus.WithField("component", "trust"),
		relays:   map[peer.ID]relayBand{},
	}
	a.Apply(s)
	return a, nil
}

// Apply takes new settings.
func (a *Agent) Apply(s Settings) {
	a.minGuard.Store(int64(s.MinGuardScore))
	a.minExit.Store(int64(s.MinExitScore))
	a.preferContacts.Store(s.PreferContactGuards)
	a.refresh.Store(int64(s.Refresh))
}

// View is the agent's view of the TCI.
func (a *Agent) View() *View { return a.view }

// Contacts are the node's contacts.
func (a *Agent) Contacts() *Contacts { return a.contacts }

// Validator is the DHT validator of trust records.
func (a *Agent) Validator() Validator {
	return Validator{Root: a.tis.Root(), Revocations: a.tis.Revocations}
}

// Keep runs the trust loops on store until ctx ends: the seed list from
// the TIS into the DHT, the node's own bundle into the DHT when it
// changes and every refresh, and the crawl that recomputes the scores.
func (a *Agent) Keep(ctx context.Context, store tis.RecordStore) {
	var lastCrawl, lastSeeds time.Time
	for {
		refresh := time.Duration(a.refresh.Load())
		if err := a.contacts.ReloadIfChanged(); err != nil {
			a.log.WithError(err).Warn("reload contacts")
		}
		if a.tis.URL() != "" && time.Since(lastSeeds) >= refresh {
			if err := a.putSeeds(ctx, store); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.WithError(err).Debug("seed list")
			} else {
				lastSeeds = time.Now()
			}
		}
		published, err := a.publishOwn(ctx, store, time.Since(lastCrawl) >= refresh)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.WithError(err).Warn("publish own trust records")
		}
		if published || time.Since(lastCrawl) >= refresh {
			// The own bundle is in the view (publishOwn offers it) and
			// is never fetched: whoever serves the fetches would learn
			// whose crawl it is. Its vouchees are crawled instead.
			extra := a.view.vouchees(a.tis.Enrollment().MatryoshkaCert.ID)
			for _, c := range a.contacts.List() {
				extra = append(extra, c.ID)
			}
			if err := a.view.Refresh(ctx, store, extra); err != nil {
				return
			}
			lastCrawl = time.Now()
			s := a.view.Scores()
			a.log.WithField("identities", s.Len()).Debug("trust scores computed")
		}
		if !sleep.For(ctx, ownCheck) {
			return
		}
	}
}

// putSeeds fetches the TIS's seed list and puts it into the DHT.
func (a *Agent) putSeeds(ctx context.Context, store tis.RecordStore) error {
	fctx, cancel := context.WithTimeout(ctx, tis.DefaultClientTimeout)
	defer cancel()
	_, data, err := tis.NewClient(a.tis.URL(), a.tis.Root()).FetchSeeds(fctx)
	if err != nil {
		return err
	}
	_, _ = a.view.OfferSeeds(data)
	pctx, cancel2 := context.WithTimeout(ctx, tis.RecordTimeout)
	defer cancel2()
	return store.PutRecord(pctx, SeedsKey(a.tis.Root()), data)
}

// publishOwn publishes the node's own bundle when OwnFile changed since
// the last time, or always with force. It reports whether it published.
func (a *Agent) publishOwn(ctx context.Context, store tis.RecordStore, force bool) (bool, error) {
	var stamp time.Time
	fi, err := os.Stat(filepath.Join(a.dir, OwnFile))
	switch {
	case err == nil:
		stamp = fi.ModTime()
	case errors.Is(err, fs.ErrNotExist):
	default:
		return false, err
	}
	a.mu.Lock()
	prev, same := a.published, stamp.Equal(a.ownStamp) && !a.published.IsZero() && !a.putFailed
	a.mu.Unlock()
	if same && !force {
		return false, nil
	}
	own, err := LoadOwn(a.dir)
	if err != nil {
		return false, err
	}
	b, data, err := own.Bundle(a.tis.Enrollment().MatryoshkaCert, a.tis.MatryoshkaKey(), time.Now(), prev)
	if err != nil {
		return false, err
	}
	if _, err := a.view.Offer(data); err != nil {
		return false, fmt.Errorf("own bundle: %w", err)
	}
	a.mu.Lock()
	a.published, a.ownStamp = b.IssuedAt, stamp
	a.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, tis.RecordTimeout)
	defer cancel()
	err = store.PutRecord(pctx, BundleKey(b.Owner()), data)
	a.mu.Lock()
	a.putFailed = err != nil
	a.mu.Unlock()
	if err != nil {
		// Typically no DHT peer yet (the first node of a network): the
		// next check tries again.
		a.log.WithError(err).Debug("put own bundle")
		return true, nil
	}
	a.log.WithField("vouches", len(b.Vouches)).Debug("own trust records published")
	return true, nil
}

// KeepRelayScore keeps a relay's score statement from the TIS fresh: it
// asks every refresh, and takes (and calls republish to publish the
// descriptor with) a new statement when the band changed or the one it
// holds is past half its life.
func (a *Agent) KeepRelayScore(ctx context.Context, republish func()) {
	for {
		refresh := time.Duration(a.refresh.Load())
		next := min(tis.RecordRetry, refresh)
		st, data, err := a.fetchRelayScore(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.WithError(err).Debug("relay score statement")
		} else {
			now := time.Now()
			a.mu.Lock()
			old := a.stParsed
			take := old == nil || old.Band != st.Band || now.After(old.IssuedAt.Add(old.Expires.Sub(old.IssuedAt)/2))
			if take {
				a.statement, a.stParsed = data, st
			}
			a.mu.Unlock()
			if take {
				lo, hi := st.Range()
				a.log.WithField("band", fmt.Sprintf("%d-%d", lo, hi)).Debug("relay trust statement from the TIS")
				republish()
			}
			next = min(refresh, st.Expires.Sub(st.IssuedAt)/2)
		}
		if !sleep.For(ctx, next) {
			return
		}
	}
}

func (a *Agent) fetchRelayScore(ctx context.Context) (*RelayScore, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, tis.DefaultClientTimeout)
	defer cancel()
	en := a.tis.Enrollment()
	c := tis.NewClient(a.tis.URL(), a.tis.Root())
	data, err := c.FetchRelayScore(ctx, a.nodeKey, en.NodeCert, a.tis.MatryoshkaKey(), en.MatryoshkaCert)
	if err != nil {
		return nil, nil, err
	}
	st, err := DecodeRelayScore(data)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Verify(a.tis.Root(), time.Now()); err != nil {
		return nil, nil, err
	}
	if st.Node != en.NodeCert.ID {
		return nil, nil, fmt.Errorf("statement for node %s: %w", st.Node, ErrWrongIdentity)
	}
	return st, data, nil
}

// Statement is the relay's own current score statement, to publish in its
// descriptor under DescriptorExtension; false without a current one.
func (a *Agent) Statement() ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stParsed == nil || !time.Now().Before(a.stParsed.Expires) {
		return nil, false
	}
	return a.statement, true
}

// OwnBand is the relay's own current band.
func (a *Agent) OwnBand() (lo, hi int, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stParsed == nil || !time.Now().Before(a.stParsed.Expires) {
		return 0, 0, false
	}
	lo, hi = a.stParsed.Range()
	return lo, hi, true
}

// Band returns the verified score band of relay r and when its statement
// expires: the statement must be signed by the TIS, current, and for the
// node ID of the relay's certificate, which must not be revoked. Answers
// are cached per relay until its certificate or statement changes.
func (a *Agent) Band(r Relay) (lo, hi int, expires time.Time, ok bool) {
	if r.Statement == nil {
		return 0, 0, time.Time{}, false
	}
	now := time.Now()
	a.mu.Lock()
	rb, cached := a.relays[r.ID]
	a.mu.Unlock()
	if !cached || rb.statement != string(r.Statement) || rb.cert != string(r.Cert) {
		rb = a.checkBand(r, now)
		a.mu.Lock()
		if len(a.relays) >= tis.MaxPeerCerts {
			clear(a.relays)
		}
		a.relays[r.ID] = rb
		a.mu.Unlock()
	}
	if !rb.ok || !now.Before(rb.expires) {
		return 0, 0, time.Time{}, false
	}
	if l := a.tis.Revocations(); l != nil && l.Revoked(rb.serial) {
		return 0, 0, time.Time{}, false
	}
	lo, hi = BandRange(rb.band)
	return lo, hi, rb.expires, true
}

// checkBand verifies r's statement against its certificate.
func (a *Agent) checkBand(r Relay, now time.Time) relayBand {
	rb := relayBand{cert: string(r.Cert), statement: string(r.Statement)}
	st, err := DecodeRelayScore(r.Statement)
	if err == nil {
		err = st.Verify(a.tis.Root(), now)
	}
	if err != nil || r.Cert == nil {
		return rb
	}
	c, err := tis.VerifyNodeCertBytes(r.Cert, a.tis.Root(), r.ID, now, a.tis.Revocations())
	if err == nil && c.ID == st.Node {
		rb.serial, rb.band, rb.expires, rb.ok = c.Serial, st.Band, st.Expires, true
	}
	return rb
}

// Weight is relay r's weight for role in path selection: relays are
// weighed by the middle of their operator's band (1 + score, so that
// relays without a statement keep weight 1), guards and exits below the
// configured minimum are excluded (0), and a contact's relay is
// ContactGuardBoost times more likely as a guard.
func (a *Agent) Weight(r Relay, role Role) float64 {
	lo, hi, _, ok := a.Band(r)
	if ok {
		a.banded.Store(true)
	}
	var minScore int64
	switch role {
	case RoleGuard:
		minScore = a.minGuard.Load()
	case RoleExit:
		minScore = a.minExit.Load()
	}
	switch {
	case minScore <= 0:
	case !ok && a.banded.Load():
		return 0 // unscored where the TIS states bands
	case ok && int64(hi) < minScore:
		return 0
	}
	w := 1.0
	if ok {
		w += float64(lo+hi) / 2
	}
	if role == RoleGuard && a.preferContacts.Load() {
		if _, isContact := a.contacts.ByNode(r.ID); isContact {
			w *= ContactGuardBoost
		}
	}
	return w
}
