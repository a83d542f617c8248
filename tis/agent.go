package tis

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/sleep"
)

// CertProtocol is the libp2p protocol on which an enrolled relay hands its
// encoded node certificate to a peer it is connected to: a relay asks a
// previous hop that presents no admission token for it (once per peer,
// then cached), so that a relay extending a circuit proves it is
// enrolled. Clients present tokens instead (package tis/token), and
// pikcio's node serves CertProtocol only on relays.
const CertProtocol protocol.ID = "/pikcio/tis-cert/1"

// Errors of a node's agent.
var (
	// ErrNotEnrolled: a root key is pinned but the node holds no
	// enrollment for it (run `pikcio enroll`), or a peer presented no
	// valid certificate.
	ErrNotEnrolled = errors.New("not enrolled with the TIS")
	// ErrNoCertificate: a relay's descriptor carries no TIS certificate.
	ErrNoCertificate = errors.New("no TIS certificate")
)

// Timings of the agent.
const (
	// certFetchTimeout bounds asking a peer for its certificate.
	certFetchTimeout = 10 * time.Second
	// certRefusedFor is how long a peer without a valid certificate is
	// refused before it is asked again.
	certRefusedFor = 30 * time.Second
	// MaxPeerCerts bounds the agents' caches of peers' certificates and
	// relays' statements.
	MaxPeerCerts = 8192
	// RecordRetry is how soon a failed fetch from the TIS or PUT into the
	// DHT is retried.
	RecordRetry = 30 * time.Second
	// RecordTimeout bounds one PUT or GET of a record in the DHT.
	RecordTimeout = 30 * time.Second
	// revocationRepublish is how often a node with a TIS URL PUTs the same
	// list again, so that it outlives DHT record expiry and churn.
	revocationRepublish = time.Hour
	// EnrollTimeout bounds the enrollment at a node's first start.
	EnrollTimeout = time.Minute
	// DefaultRevocationRefresh is how often a node fetches the revocation
	// list (tis.revocation_refresh).
	DefaultRevocationRefresh = 10 * time.Minute
)

// RecordStore is the DHT as the agents of tis and trust use it: put and
// get one signed record under a key. *discovery.Discovery is one; the
// tests use tistest.Records.
type RecordStore interface {
	PutRecord(ctx context.Context, key string, value []byte) error
	GetRecord(ctx context.Context, key string) ([]byte, error)
}

// AgentOptions configure a node's Agent (the [tis] section).
type AgentOptions struct {
	// Root is the pinned TIS root key.
	Root ed25519.PublicKey
	// URL is the TIS's base URL (BaseURL), "" for a node that learns the
	// revocation list from the DHT only.
	URL string
	// RevocationRefresh is how often the revocation list is fetched.
	RevocationRefresh time.Duration
}

// Agent is a node's part in the TIS: the pinned root, its own enrollment,
// the newest revocation list and the certificates of peers. It serves the
// node's certificate on CertProtocol (Serve), checks relays' descriptors
// (VerifyRelay) and previous hops (AdmitPeer), and keeps the revocation
// list fresh (KeepRevocations).
type Agent struct {
	opts       AgentOptions
	cert       []byte // own encoded node certificate
	bootstraps []string
	en         *Enrollment        // own certificates
	mkey       ed25519.PrivateKey // own Matryoshka key
	revs       *RevocationCache
	revPut     map[string][32]byte // SHA-256 of each revocation record last put (KeepRevocations)
	log        *logrus.Entry

	mu    sync.Mutex
	host  host.Host
	peers map[peer.ID]peerCert
}

// peerCert is a peer's certificate, or a refusal until a time.
type peerCert struct {
	cert  *Certificate
	err   error
	until time.Time
}

// EnrollFirst enrolls the node whose data directory is dir with the TIS
// when dir holds no enrollment yet. Nothing of name and email is stored:
// only the certificates the TIS answers with. ctx bounds it (at most
// EnrollTimeout).
func EnrollFirst(ctx context.Context, o AgentOptions, dir string, priv crypto.PrivKey, name, email, code string) error {
	if _, _, err := LoadEnrollment(dir); !errors.Is(err, fs.ErrNotExist) {
		return nil // enrolled, or LoadAgent reports what is wrong
	}
	if o.URL == "" {
		return fmt.Errorf("%w: enrolling needs tis.url", ErrNotEnrolled)
	}
	ctx, cancel := context.WithTimeout(ctx, EnrollTimeout)
	defer cancel()
	en, err := NewClient(BaseURL(o.URL), o.Root).EnrollNode(ctx, priv, dir, name, email, code)
	if err != nil {
		return fmt.Errorf("enroll with the TIS: %w", err)
	}
	logrus.WithField("component", "tis").WithField("serial", en.NodeCert.Serial.String()).Debug("enrolled with the TIS")
	return nil
}

// LoadAgent reads the enrollment of node id from its data directory dir.
func LoadAgent(o AgentOptions, dir string, id peer.ID) (*Agent, error) {
	en, mkey, err := LoadEnrollment(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: run \"pikcio enroll\" with data directory %s", ErrNotEnrolled, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("TIS enrollment: %w", err)
	}
	if err := VerifyNodeCert(en.NodeCert, o.Root, id, time.Now(), nil); err != nil {
		return nil, fmt.Errorf("%w: own node certificate: %w", ErrNotEnrolled, err)
	}
	cert, err := en.NodeCert.Encode()
	if err != nil {
		return nil, err
	}
	if o.URL != "" {
		o.URL = BaseURL(o.URL)
	}
	a := &Agent{
		opts:  o,
		cert:  cert,
		en:    en,
		mkey:  mkey,
		revs:  NewRevocationCache(o.Root),
		log:   logrus.WithField("component", "tis"),
		peers: map[peer.ID]peerCert{},
	}
	for _, b := range en.Bootstraps {
		if info, err := peer.AddrInfoFromString(b); err == nil && info.ID != id {
			a.bootstraps = append(a.bootstraps, b)
		}
	}
	return a, nil
}

// Root is the pinned root key.
func (a *Agent) Root() ed25519.PublicKey { return a.opts.Root }

// URL is the TIS's base URL, "" without one.
func (a *Agent) URL() string { return a.opts.URL }

// Enrollment is the node's own enrollment, and MatryoshkaKey its
// Matryoshka private key.
func (a *Agent) Enrollment() *Enrollment { return a.en }

// MatryoshkaKey: see Enrollment.
func (a *Agent) MatryoshkaKey() ed25519.PrivateKey { return a.mkey }

// Bootstraps are the bootstrap addresses the TIS gave at enrollment,
// without the node's own.
func (a *Agent) Bootstraps() []string { return a.bootstraps }

// Revocations is the newest verified revocation list (nil: none yet).
func (a *Agent) Revocations() *RevocationList { return a.revs.List() }

// Certificate is the node's own encoded node certificate, which it
// publishes in its descriptor under DescriptorExtension.
func (a *Agent) Certificate() []byte { return a.cert }

// Serve serves the node's certificate on h and asks peers on h
// (AdmitPeer).
func (a *Agent) Serve(h host.Host) {
	a.mu.Lock()
	a.host = h
	a.mu.Unlock()
	h.SetStreamHandler(CertProtocol, func(s network.Stream) {
		_ = s.SetDeadline(time.Now().Add(certFetchTimeout))
		if _, err := s.Write(a.cert); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	})
}

// VerifyRelay checks relay id's certificate from its descriptor (nil:
// it has none): a node certificate of the pinned TIS for the relay's key,
// valid now and not revoked.
func (a *Agent) VerifyRelay(id peer.ID, cert []byte) error {
	if cert == nil {
		return ErrNoCertificate
	}
	_, err := VerifyNodeCertBytes(cert, a.opts.Root, id, time.Now(), a.revs.List())
	return err
}

// AdmitPeer is a relay's admission check of a previous hop: it must
// present a valid node certificate on CertProtocol. Answers are cached
// per peer; a refusal for certRefusedFor.
func (a *Agent) AdmitPeer(ctx context.Context, id peer.ID) error {
	now := time.Now()
	a.mu.Lock()
	pc, ok := a.peers[id]
	a.mu.Unlock()
	if !ok || (pc.cert == nil && !now.Before(pc.until)) {
		pc = a.fetchPeerCert(ctx, id)
		if ctx.Err() != nil && pc.err != nil {
			return pc.err // not cached: the relay is closing or the peer slow
		}
		a.mu.Lock()
		if len(a.peers) >= MaxPeerCerts {
			clear(a.peers)
		}
		a.peers[id] = pc
		a.mu.Unlock()
	}
	if pc.err != nil {
		return pc.err
	}
	return VerifyNodeCert(pc.cert, a.opts.Root, id, now, a.revs.List())
}

// fetchPeerCert asks id, on the connection it already has, for its
// certificate, and checks it.
func (a *Agent) fetchPeerCert(ctx context.Context, id peer.ID) peerCert {
	refused := func(err error) peerCert {
		return peerCert{err: err, until: time.Now().Add(certRefusedFor)}
	}
	a.mu.Lock()
	h := a.host
	a.mu.Unlock()
	if h == nil {
		return refused(fmt.Errorf("%w: ask for certificate: agent not serving", ErrNotEnrolled))
	}
	ctx, cancel := context.WithTimeout(ctx, certFetchTimeout)
	defer cancel()
	s, err := h.NewStream(network.WithNoDial(ctx, "tis certificate"), id, CertProtocol)
	if err != nil {
		return refused(fmt.Errorf("%w: ask for certificate: %w", ErrNotEnrolled, err))
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	_ = s.CloseWrite()
	data, err := readCert(s)
	if err != nil {
		_ = s.Reset()
		return refused(fmt.Errorf("%w: read certificate: %w", ErrNotEnrolled, err))
	}
	cert, err := VerifyNodeCertBytes(data, a.opts.Root, id, time.Now(), a.revs.List())
	if err != nil {
		return refused(fmt.Errorf("%w: %w", ErrNotEnrolled, err))
	}
	return peerCert{cert: cert}
}

// readCert reads an encoded certificate: everything up to EOF, at most
// MaxCertificateSize bytes.
func readCert(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCertificateSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCertificateSize {
		return nil, fmt.Errorf("certificate over %d bytes: %w", MaxCertificateSize, ErrMalformed)
	}
	return data, nil
}

// KeepRevocations keeps the revocation list fresh until ctx ends: now and
// every refresh interval (sooner after a failure) it fetches the list from
// the TIS when it has a URL and PUTs a newer one into store, then GETs
// the list from store, so that a node that cannot reach the TIS still
// learns revocations. Each newer list makes onUpdate run (a client
// rechecks its directory).
func (a *Agent) KeepRevocations(ctx context.Context, store RecordStore, onUpdate func()) {
	var put uint64 // sequence last put into the DHT
	var putAt time.Time
	for {
		next := a.opts.RevocationRefresh
		if a.opts.URL != "" {
			if err := a.fetchRevocations(ctx, onUpdate); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.WithError(err).Warn("fetch TIS revocation list")
				next = min(next, RecordRetry)
			}
			if l := a.revs.List(); l != nil && (l.Sequence > put || time.Since(putAt) >= revocationRepublish) {
				if err := a.putRevocations(ctx, store, l, time.Since(putAt) >= revocationRepublish); err != nil {
					if ctx.Err() != nil {
						return
					}
					a.log.WithError(err).Debug("put revocation list into the DHT")
					next = min(next, RecordRetry)
				} else {
					put, putAt = l.Sequence, time.Now()
				}
			}
		}
		if err := a.getRevocations(ctx, store, onUpdate); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.WithError(err).Debug("get revocation list from the DHT")
		}
		if !sleep.For(ctx, next) {
			return
		}
	}
}

func (a *Agent) fetchRevocations(ctx context.Context, onUpdate func()) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultClientTimeout)
	defer cancel()
	l, err := NewClient(a.opts.URL, a.opts.Root).FetchRevocationsSince(ctx, a.revs.List())
	if err != nil {
		return err
	}
	if a.revs.Offer(l) {
		a.log.WithField("list", l.String()).Debug("new revocation list from the TIS")
		onUpdate()
	}
	return nil
}

// putRevocations publishes each page of l under its RevocationPageKey
// and its delta under RevocationDeltaKey; with all false, only the
// records that changed since the last put (usually the delta alone).
func (a *Agent) putRevocations(ctx context.Context, store RecordStore, l *RevocationList, all bool) error {
	pages, err := l.EncodePages()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, RecordTimeout)
	defer cancel()
	put := make(map[string][32]byte, len(pages))
	for i, data := range pages {
		key := RevocationPageKey(a.opts.Root, i)
		if i == l.PageCount() {
			key = RevocationDeltaKey(a.opts.Root)
		}
		sum := sha256.Sum256(data)
		put[key] = sum
		if !all && a.revPut[key] == sum {
			continue
		}
		if err := store.PutRecord(ctx, key, data); err != nil {
			return fmt.Errorf("revocation list page %d: %w", i, err)
		}
	}
	a.revPut = put
	return nil
}

// RecordGetter reads records of the DHT (a RecordStore, or a discovery
// node that only reads).
type RecordGetter interface {
	GetRecord(ctx context.Context, key string) ([]byte, error)
}

// GetRevocationPages reads the revocation list of root from the DHT: its
// first page, then as many more as the first says the list has (at most
// MaxRevocationPages), for RevocationCache.Update to verify and join.
func GetRevocationPages(ctx context.Context, store RecordGetter, root ed25519.PublicKey) ([][]byte, error) {
	data, err := store.GetRecord(ctx, RevocationKey(root))
	if err != nil {
		return nil, err
	}
	first, err := DecodeRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("revocation list from the DHT: %w", err)
	}
	pages := [][]byte{data}
	for i := 1; i < first.PageCount(); i++ {
		b, err := store.GetRecord(ctx, RevocationPageKey(root, i))
		if err != nil {
			return nil, fmt.Errorf("revocation list page %d: %w", i, err)
		}
		pages = append(pages, b)
	}
	if first.Pages > 1 {
		// A list of several pages has a delta on them (one on other
		// pages is left out: those pages alone are a list still).
		if b, err := store.GetRecord(ctx, RevocationDeltaKey(root)); err == nil {
			if d, err := DecodeRevocationList(b); err == nil && d.Base == first.Sequence {
				pages = append(pages, b)
			}
		}
	}
	return pages, nil
}

// getRevocationDelta offers the cache the DHT's delta on the pages the
// cache holds, and reports whether the cache took it. It fails when the
// cache holds no list of pages or the delta is on other pages: then the
// pages are read again.
func (a *Agent) getRevocationDelta(ctx context.Context, store RecordStore) (bool, error) {
	held := a.revs.List()
	if held.Delta() == nil {
		return false, errors.New("no revocation delta held")
	}
	b, err := store.GetRecord(ctx, RevocationDeltaKey(a.opts.Root))
	if err != nil {
		return false, err
	}
	d, err := ParseRevocationList(b, a.opts.Root)
	if err != nil {
		return false, err
	}
	if d.Sequence <= held.Sequence {
		return false, nil
	}
	l, err := held.WithDelta(d)
	if err != nil {
		return false, err
	}
	return a.revs.Offer(l), nil
}

// getRevocations offers the DHT's list to the cache, which keeps it only
// if it verifies against the pinned root and is newer.
func (a *Agent) getRevocations(ctx context.Context, store RecordStore, onUpdate func()) error {
	ctx, cancel := context.WithTimeout(ctx, RecordTimeout)
	defer cancel()
	newer, err := a.getRevocationDelta(ctx, store)
	if err != nil {
		pages, err := GetRevocationPages(ctx, store, a.opts.Root)
		if err != nil {
			return err
		}
		if newer, err = a.revs.Update(pages...); err != nil {
			return fmt.Errorf("revocation list from the DHT: %w", err)
		}
	}
	if newer {
		a.log.WithField("list", a.revs.List().String()).Debug("new revocation list from the DHT")
		onUpdate()
	}
	return nil
}
