package node

import (
	"context"
	"crypto/ed25519"
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

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
)

// CertProtocol is the libp2p protocol on which an enrolled node hands its
// encoded node certificate to a peer it is connected to: a relay asks the
// previous hop of a new circuit for it (once per peer, then cached), so
// that a guard carries circuits only from enrolled nodes. Only the
// previous hop is ever asked, so a middle or an exit relay learns the
// certificate of the relay before it, never the client's.
const CertProtocol protocol.ID = "/pikcio/tis-cert/1"

// Errors of the TIS wiring.
var (
	// ErrNotEnrolled: tis.root_key is set but the node holds no enrollment
	// for it (run `pikcio enroll`), or a peer presented no certificate.
	ErrNotEnrolled = errors.New("not enrolled with the TIS")
	// ErrNoCertificate: a relay's descriptor carries no TIS certificate.
	ErrNoCertificate = errors.New("no TIS certificate")
)

// Timings of the TIS wiring.
const (
	// certFetchTimeout bounds asking a peer for its certificate.
	certFetchTimeout = 10 * time.Second
	// certRefusedFor is how long a peer without a valid certificate is
	// refused before it is asked again.
	certRefusedFor = 30 * time.Second
	// maxPeerCerts bounds the cache of peers' certificates.
	maxPeerCerts = 8192
	// revocationRetry is how soon a failed revocation fetch is retried.
	revocationRetry = 30 * time.Second
	// revocationDHTTimeout bounds one PUT or GET of the revocation list
	// in the DHT.
	revocationDHTTimeout = 30 * time.Second
	// revocationRepublish is how often a node with tis.url PUTs the same
	// list again, so that it outlives DHT record expiry and churn.
	revocationRepublish = time.Hour
)

// nodeTIS is the node's part in the TIS: the pinned root, its own
// enrollment, the newest revocation list and the certificates of peers.
type nodeTIS struct {
	root       ed25519.PublicKey
	require    bool
	url        string
	refresh    time.Duration
	cert       []byte // own encoded node certificate
	bootstraps []string
	en         *tis.Enrollment    // own certificates
	mkey       ed25519.PrivateKey // own Matryoshka key
	revs       *tis.RevocationCache
	host       host.Host
	log        *logrus.Entry

	mu    sync.Mutex
	peers map[peer.ID]peerCert
}

// peerCert is a peer's certificate, or a refusal until a time.
type peerCert struct {
	cert  *tis.Certificate
	err   error
	until time.Time
}

// enrollFirst enrolls the node with the TIS when tc pins a root key, the
// data directory holds no enrollment and who is set. Nothing of who is
// stored: only the certificates the TIS answers with.
func enrollFirst(tc config.TISConfig, dir string, priv crypto.PrivKey, who *Enrollee) error {
	if tc.RootKey == "" || who == nil {
		return nil
	}
	if _, _, err := tis.LoadEnrollment(dir); !errors.Is(err, fs.ErrNotExist) {
		return nil // enrolled, or loadTIS reports what is wrong
	}
	if tc.URL == "" {
		return fmt.Errorf("%w: enrolling needs tis.url", ErrNotEnrolled)
	}
	root, err := tis.ParseKey(tc.RootKey)
	if err != nil {
		return fmt.Errorf("tis.root_key: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), enrollTimeout)
	defer cancel()
	en, err := tis.NewClient(tis.BaseURL(tc.URL), root).EnrollNode(ctx, priv, dir, who.Name, who.Email, who.Code)
	if err != nil {
		return fmt.Errorf("enroll with the TIS: %w", err)
	}
	logrus.WithField("component", "tis").WithField("serial", en.NodeCert.Serial.String()).Debug("enrolled with the TIS")
	return nil
}

// loadTIS reads the node's enrollment for the [tis] section. It returns
// nil when no root key is configured.
func loadTIS(tc config.TISConfig, dir string, id peer.ID) (*nodeTIS, error) {
	if tc.RootKey == "" {
		return nil, nil
	}
	root, err := tis.ParseKey(tc.RootKey)
	if err != nil {
		return nil, fmt.Errorf("tis.root_key: %w", err)
	}
	en, mkey, err := tis.LoadEnrollment(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: run \"pikcio enroll\" with data directory %s", ErrNotEnrolled, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("TIS enrollment: %w", err)
	}
	if err := tis.VerifyNodeCert(en.NodeCert, root, id, time.Now(), nil); err != nil {
		return nil, fmt.Errorf("%w: own node certificate: %w", ErrNotEnrolled, err)
	}
	cert, err := en.NodeCert.Encode()
	if err != nil {
		return nil, err
	}
	t := &nodeTIS{
		root:    root,
		require: tc.Require,
		refresh: tc.RevocationRefresh.D(),
		cert:    cert,
		en:      en,
		mkey:    mkey,
		revs:    tis.NewRevocationCache(root),
		log:     logrus.WithField("component", "tis"),
		peers:   map[peer.ID]peerCert{},
	}
	if tc.URL != "" {
		t.url = tis.BaseURL(tc.URL)
	}
	for _, b := range en.Bootstraps {
		if info, err := peer.AddrInfoFromString(b); err == nil && info.ID != id {
			t.bootstraps = append(t.bootstraps, b)
		}
	}
	return t, nil
}

// attach serves the node's certificate on h.
func (t *nodeTIS) attach(h host.Host) {
	t.host = h
	h.SetStreamHandler(CertProtocol, func(s network.Stream) {
		_ = s.SetDeadline(time.Now().Add(certFetchTimeout))
		if _, err := s.Write(t.cert); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	})
}

// extension is the descriptor extension that carries the certificate.
func (t *nodeTIS) extension() discovery.Extension {
	return discovery.Extension{Type: tis.DescriptorExtension, Data: t.cert}
}

// verifyRelay is discovery's VerifyRelay check: the descriptor must carry
// a node certificate of the pinned TIS for the relay's key, valid now and
// not revoked.
func (t *nodeTIS) verifyRelay(d *discovery.Descriptor) error {
	data, ok := d.Extension(tis.DescriptorExtension)
	if !ok {
		return ErrNoCertificate
	}
	_, err := tis.VerifyNodeCertBytes(data, t.root, d.PeerID, time.Now(), t.revs.List())
	return err
}

// admitPeer is the relay's AdmitPeer hook: the previous hop must present
// a valid node certificate on CertProtocol.
func (t *nodeTIS) admitPeer(ctx context.Context, id peer.ID) error {
	now := time.Now()
	t.mu.Lock()
	pc, ok := t.peers[id]
	t.mu.Unlock()
	if !ok || (pc.cert == nil && !now.Before(pc.until)) {
		pc = t.fetchPeerCert(ctx, id)
		if ctx.Err() != nil && pc.err != nil {
			return pc.err // not cached: the relay is closing or the peer slow
		}
		t.mu.Lock()
		if len(t.peers) >= maxPeerCerts {
			clear(t.peers)
		}
		t.peers[id] = pc
		t.mu.Unlock()
	}
	if pc.err != nil {
		return pc.err
	}
	return tis.VerifyNodeCert(pc.cert, t.root, id, now, t.revs.List())
}

// fetchPeerCert asks id, on the connection it already has, for its
// certificate, and checks it.
func (t *nodeTIS) fetchPeerCert(ctx context.Context, id peer.ID) peerCert {
	refused := func(err error) peerCert {
		return peerCert{err: err, until: time.Now().Add(certRefusedFor)}
	}
	ctx, cancel := context.WithTimeout(ctx, certFetchTimeout)
	defer cancel()
	s, err := t.host.NewStream(network.WithNoDial(ctx, "tis certificate"), id, CertProtocol)
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
	cert, err := tis.VerifyNodeCertBytes(data, t.root, id, time.Now(), t.revs.List())
	if err != nil {
		return refused(fmt.Errorf("%w: %w", ErrNotEnrolled, err))
	}
	return peerCert{cert: cert}
}

// readCert reads an encoded certificate: everything up to EOF, at most
// tis.MaxCertificateSize bytes.
func readCert(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, tis.MaxCertificateSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > tis.MaxCertificateSize {
		return nil, fmt.Errorf("certificate over %d bytes: %w", tis.MaxCertificateSize, tis.ErrMalformed)
	}
	return data, nil
}

// recordStore is the DHT as the revocation loop uses it
// (*discovery.Discovery).
type recordStore interface {
	PutRecord(ctx context.Context, key string, value []byte) error
	GetRecord(ctx context.Context, key string) ([]byte, error)
}

// keepRevocations keeps the revocation list fresh until ctx ends: now and
// every refresh interval (sooner after a failure) it fetches the list from
// the TIS when tis.url is set and PUTs a newer one into the DHT, then GETs
// the list from the DHT, so that a node that cannot reach the TIS still
// learns revocations. Each newer list makes onUpdate run (the client
// rechecks its directory).
func (t *nodeTIS) keepRevocations(ctx context.Context, dht recordStore, onUpdate func()) {
	var put uint64 // sequence last put into the DHT
	var putAt time.Time
	for {
		next := t.refresh
		if t.url != "" {
			if err := t.fetchRevocations(ctx, onUpdate); err != nil {
				if ctx.Err() != nil {
					return
				}
				t.log.WithError(err).Warn("fetch TIS revocation list")
				next = min(next, revocationRetry)
			}
			if l := t.revs.List(); l != nil && (l.Sequence > put || time.Since(putAt) >= revocationRepublish) {
				if err := t.putRevocations(ctx, dht, l); err != nil {
					if ctx.Err() != nil {
						return
					}
					t.log.WithError(err).Debug("put revocation list into the DHT")
					next = min(next, revocationRetry)
				} else {
					put, putAt = l.Sequence, time.Now()
				}
			}
		}
		if err := t.getRevocations(ctx, dht, onUpdate); err != nil {
			if ctx.Err() != nil {
				return
			}
			t.log.WithError(err).Debug("get revocation list from the DHT")
		}
		if !sleep(ctx, next) {
			return
		}
	}
}

func (t *nodeTIS) fetchRevocations(ctx context.Context, onUpdate func()) error {
	ctx, cancel := context.WithTimeout(ctx, tis.DefaultClientTimeout)
	defer cancel()
	l, err := tis.FetchRevocations(ctx, t.url, t.root)
	if err != nil {
		return err
	}
	if t.revs.Offer(l) {
		t.log.WithField("list", l.String()).Debug("new revocation list from the TIS")
		onUpdate()
	}
	return nil
}

func (t *nodeTIS) putRevocations(ctx context.Context, dht recordStore, l *tis.RevocationList) error {
	data, err := l.Encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, revocationDHTTimeout)
	defer cancel()
	return dht.PutRecord(ctx, tis.RevocationKey(t.root), data)
}

// getRevocations offers the DHT's list to the cache, which keeps it only
// if it verifies against the pinned root and is newer.
func (t *nodeTIS) getRevocations(ctx context.Context, dht recordStore, onUpdate func()) error {
	ctx, cancel := context.WithTimeout(ctx, revocationDHTTimeout)
	defer cancel()
	data, err := dht.GetRecord(ctx, tis.RevocationKey(t.root))
	if err != nil {
		return err
	}
	newer, err := t.revs.Update(data)
	if err != nil {
		return fmt.Errorf("revocation list from the DHT: %w", err)
	}
	if newer {
		t.log.WithField("list", t.revs.List().String()).Debug("new revocation list from the DHT")
		onUpdate()
	}
	return nil
}
