package discovery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
	"github.com/sirupsen/logrus"
)

// RelaysKey is the name under which relays announce themselves as
// providers; RelaysCID is its content ID.
const RelaysKey = "pikcio-relays-v1"

// RelaysCID is the DHT provider key of relays.
var RelaysCID = func() cid.Cid {
	h, err := multihash.Sum([]byte(RelaysKey), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}()

// Lifecycle errors.
var (
	ErrClosed    = errors.New("discovery closed")
	ErrStarted   = errors.New("discovery already started")
	ErrBootstrap = errors.New("no bootstrap peer reachable")
	ErrNotRelay  = errors.New("node does not publish a descriptor")
	// ErrRelayRefused wraps the error of the VerifyRelay check.
	ErrRelayRefused = errors.New("relay refused by check")
)

// publishTimeout bounds one publication.
const publishTimeout = 60 * time.Second

// Timings of rediscovery.
const (
	// firstDownTime is how long a relay named as the failing hop is kept
	// out of paths the first time; each further failure before it works
	// again doubles it, up to the down time (DownTime option).
	firstDownTime = 30 * time.Second
	// refusedTime is how long a relay that one previous hop refused to
	// extend to is kept out of paths, the first time: that hop's own
	// first negative-cache entry for a relay it does not know yet (a
	// restarted or new relay), so that it looks it up again meanwhile.
	// Refusals by the same hop in a row double it, up to firstDownTime;
	// a refusal by another hop within refusedWindow blames the relay.
	refusedTime   = unknownRelayMin
	refusedWindow = 2 * firstDownTime
	// watchDownMin and watchDownMax bound the backoff with which the
	// descriptor of a relay marked down is looked up again.
	watchDownMin = 500 * time.Millisecond
	watchDownMax = 2 * time.Second
	// negativeMin is how long a peer without a descriptor is skipped the
	// first time; it doubles while it stays without one, up to twice the
	// refresh interval.
	negativeMin = 30 * time.Second
)

// negativeEntry is a peer found without a descriptor: skipped until until;
// wait is how long the next miss makes it wait.
type negativeEntry struct {
	until time.Time
	wait  time.Duration
}

// next is the entry after one more miss at now: skipped for its wait,
// at least lo and at most hi, and twice as long after the next miss.
func (e negativeEntry) next(now time.Time, lo, hi time.Duration) negativeEntry {
	wait := min(max(e.wait, lo), hi)
	return negativeEntry{until: now.Add(wait), wait: 2 * wait}
}

// Discovery is a node's part in relay discovery: its DHT, its verified
// relay directory, its entry guards and, on a relay, the publication of
// its descriptor.
type Discovery struct {
	host   host.Host
	o      options
	dht    *dht.IpfsDHT
	dir    *directory
	guards *guardSet
	sel    *Selector
	log    *logrus.Entry

	ctx        context.Context // cancelled by Close
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	publishNow chan struct{}
	notifee    network.Notifiee // watches the relays the host loses (watchGone)
	// publishMu serializes publications: each reads the relay's info and
	// takes its timestamp under it, so a later Publish always carries the
	// later info and a newer timestamp, and the DHT never refuses it as
	// older than one under way (a background republish racing an explicit
	// Publish after an info change).
	publishMu sync.Mutex

	mu            sync.Mutex
	started       bool
	starting      bool
	closed        bool
	lastPublished time.Time
	negative      map[peer.ID]negativeEntry // peers without a descriptor
	unknown       map[peer.ID]negativeEntry // next hops without one (resolve.go)
	watching      map[peer.ID]time.Time     // relays watch looks after, and until when at least
	goneWatches   int                       // of them, those watchGone started
}

// New creates the node's DHT on h (pikcio's own protocol, no default
// bootstrap peers) and loads its guards. Nothing is sent before Start.
func New(h host.Host, opts ...Option) (*Discovery, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.relayInfo != nil && h.Peerstore().PrivKey(h.ID()) == nil {
		return nil, fmt.Errorf("relay %s: no private key in peerstore: %w", h.ID(), errOption)
	}
	if o.addrs == nil {
		o.addrs = h.Addrs
	}
	sel := &Selector{Self: h.ID(), Weigher: o.weigher, AllowSameSubnet: o.allowSameSubnet, Now: o.now, Observed: func(id peer.ID) []ma.Multiaddr {
		conns := h.Network().ConnsToPeer(id)
		out := make([]ma.Multiaddr, 0, len(conns))
		for _, c := range conns {
			out = append(out, c.RemoteMultiaddr())
		}
		return out
	}}
	var guardPath string
	if o.dataDir != "" {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		guardPath = filepath.Join(o.dataDir, GuardsFile)
	}
	guards, err := loadGuardSet(guardPath, o.guards, sel)
	if err != nil {
		return nil, err
	}
	mode := dht.ModeClient
	if o.server {
		mode = dht.ModeServer
	}
	dopts := []dht.Option{
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.Mode(mode),
		dht.WithCustomMessageSender(newDHTSender),
		dht.Validator(record.NamespacedValidator{}),
		dht.NamespacedValidator(Namespace, validator{now: o.now, maxSkew: o.maxSkew}),
		dht.BootstrapPeers(o.bootstrap...),
		dht.MaxRecordAge(o.lifetime),
		dht.ProviderManagerOpts(records.ProvideValidity(o.lifetime)),
	}
	for ns, v := range o.validators {
		dopts = append(dopts, dht.NamespacedValidator(ns, v))
	}
	kad, err := dht.New(h, dopts...)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Discovery{
		host:       h,
		o:          o,
		dht:        kad,
		dir:        newDirectory(),
		guards:     guards,
		sel:        sel,
		log:        logrus.WithField("component", "discovery"),
		ctx:        ctx,
		cancel:     cancel,
		publishNow: make(chan struct{}, 1),
		negative:   map[peer.ID]negativeEntry{},
		unknown:    map[peer.ID]negativeEntry{},
		watching:   map[peer.ID]time.Time{},
	}
	d.notifee = &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		if id := c.RemotePeer(); n.Connectedness(id) != network.Connected {
			d.watchGone(id)
		}
	}}
	return d, nil
}

// Start joins the DHT through the bootstrap peers and starts the refresh
// loop and, on a relay, the publish loop. It fails with ErrBootstrap when
// bootstrap peers are configured and none can be reached; Start may then
// be called again.
func (d *Discovery) Start(ctx context.Context) error {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return ErrClosed
	case d.started || d.starting:
		d.mu.Unlock()
		return ErrStarted
	}
	d.starting = true
	d.mu.Unlock()

	// Close cancels a Start under way.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.ctx, cancel)()
	err := d.join(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.starting = false
	if d.closed {
		return ErrClosed
	}
	if err != nil {
		return err
	}
	d.started = true
	d.host.Network().Notify(d.notifee)
	if d.o.relayInfo != nil {
		d.wg.Go(d.publishLoop)
	}
	if d.o.discover {
		d.wg.Go(d.refreshLoop)
	}
	return nil
}

// join connects to the bootstrap peers and waits until one is in the
// routing table.
func (d *Discovery) join(ctx context.Context) error {
	if err := d.connectBootstrap(ctx); err != nil {
		return err
	}
	if err := d.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrap DHT: %w", err)
	}
	if len(d.o.bootstrap) > 0 {
		// Connected is not joined: wait until a bootstrap peer is in the
		// routing table (identify has shown it serves the DHT).
		if err := d.waitForPeers(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrBootstrap, err)
		}
	}
	return nil
}

func (d *Discovery) connectBootstrap(ctx context.Context) error {
	if len(d.o.bootstrap) == 0 {
		return nil
	}
	errs := make([]error, len(d.o.bootstrap))
	var wg sync.WaitGroup
	for i, ai := range d.o.bootstrap {
		if ai.ID == d.host.ID() {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, d.o.fetchTimeout)
			defer cancel()
			if err := d.host.Connect(cctx, ai); err != nil {
				errs[i] = fmt.Errorf("connect %s: %w", ai.ID, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %w", ErrBootstrap, errors.Join(errs...))
}

// Close stops the loops, waits for them and closes the DHT. The host is
// the caller's. Close is idempotent.
func (d *Discovery) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.host.Network().StopNotify(d.notifee)
	d.cancel()
	d.wg.Wait()
	if err := d.dht.Close(); err != nil {
		return fmt.Errorf("close DHT: %w", err)
	}
	return nil
}

// Republish asks the publish loop to publish now, e.g. after an onion key
// rotation. It does not wait.
func (d *Discovery) Republish() {
	select {
	case d.publishNow <- struct{}{}:
	default:
	}
}

func (d *Discovery) publishLoop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-timer.C:
		case <-d.publishNow:
			timer.Stop()
		}
		next := d.o.republishInterval
		ctx, cancel := context.WithTimeout(d.ctx, publishTimeout)
		err := d.Publish(ctx)
		cancel()
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			d.log.WithError(err).Warn("publish descriptor")
			next = d.o.retryInterval
		}
		timer.Reset(next)
	}
}

// Publish signs the relay's current descriptor and puts it in the DHT,
// then announces the relay as a provider of RelaysCID.
func (d *Discovery) Publish(ctx context.Context) error {
	if d.o.relayInfo == nil {
		return ErrNotRelay
	}
	d.publishMu.Lock()
	defer d.publishMu.Unlock()
	info, err := d.o.relayInfo()
	if err != nil {
		return fmt.Errorf("relay info: %w", err)
	}
	now := d.o.now()
	d.mu.Lock()
	pub := unixTime(now)
	if !pub.After(d.lastPublished) {
		// Every publication must be newer than the last, or the DHT
		// keeps the old one.
		pub = d.lastPublished.Add(time.Second)
	}
	// Reserved before the put: a put that failed half-way (stored here,
	// not at the servers) must not make the next one look older.
	d.lastPublished = pub
	d.mu.Unlock()
	proto := info.Protocol
	if proto == 0 {
		proto = DefaultProtocol
	}
	addrs := d.o.addrs()
	if len(addrs) > maxAddrs {
		addrs = addrs[:maxAddrs]
	}
	desc := &Descriptor{
		Protocol:     proto,
		Flags:        info.Flags,
		PeerID:       d.host.ID(),
		Published:    pub,
		Expires:      minTime(pub.Add(d.o.lifetime), info.OnionKey.Expires),
		OnionKey:     info.OnionKey,
		PrevOnionKey: info.PrevOnionKey,
		Addrs:        addrs,
		ExitPorts:    info.ExitPorts,
		Extensions:   info.Extensions,
	}
	b, err := desc.Sign(d.host.Peerstore().PrivKey(d.host.ID()))
	if err != nil {
		return err
	}
	if err := d.waitForPeers(ctx); err != nil {
		return err
	}
	if err := d.dht.PutValue(ctx, DescriptorKey(d.host.ID()), b); err != nil {
		return fmt.Errorf("put descriptor: %w", err)
	}
	if d.o.strategy.providers() {
		if err := d.dht.Provide(ctx, RelaysCID, true); err != nil {
			return fmt.Errorf("provide relay key: %w", err)
		}
	}
	d.log.WithField("expires", desc.Expires).Debug("descriptor published")
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// waitForPeers waits until the routing table has a peer to talk to.
func (d *Discovery) waitForPeers(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for d.dht.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no DHT peers: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func (d *Discovery) refreshLoop() {
	ctx, cancel := context.WithTimeout(d.ctx, d.o.refreshInterval)
	d.waitForPeers(ctx) // refresh anyway: the walk may still find peers
	cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(d.ctx, d.o.refreshInterval)
		stats, err := d.Refresh(ctx)
		cancel()
		if err != nil && d.ctx.Err() == nil {
			d.log.WithError(err).Warn("refresh relays")
		}
		d.log.WithField("relays", stats.Relays).WithField("took", stats.Duration).Debug("relays refreshed")
		timer.Reset(d.o.refreshInterval)
	}
}

// RefreshStats describes one discovery round.
type RefreshStats struct {
	Candidates int           // peers asked for a descriptor
	FromWalk   int           // peers met by the random walk
	Providers  int           // providers of RelaysCID found
	Fetched    int           // descriptors received
	Invalid    int           // descriptors refused by verification
	Relays     int           // relays in the directory afterwards
	Duration   time.Duration // time the round took
}

// Refresh runs one discovery round now: it gathers candidate peers by the
// configured strategy, fetches their descriptors from the DHT, verifies
// them and updates the directory.
func (d *Discovery) Refresh(ctx context.Context) (RefreshStats, error) {
	start := time.Now()
	var st RefreshStats
	cands := map[peer.ID]bool{} // true: skip the negative cache
	var errs []error
	if d.o.strategy.walk() {
		for range d.o.walkSize {
			var key [32]byte
			rand.Read(key[:])
			ps, err := d.dht.GetClosestPeers(ctx, string(key[:]))
			if err != nil && ctx.Err() != nil {
				return st, fmt.Errorf("random walk: %w", err)
			}
			for _, p := range ps {
				cands[p] = cands[p] || false
			}
		}
		for _, p := range d.dht.RoutingTable().ListPeers() {
			cands[p] = cands[p] || false
		}
		st.FromWalk = len(cands)
	}
	if d.o.strategy.providers() {
		for ai := range d.dht.FindProvidersAsync(ctx, RelaysCID, 0) {
			cands[ai.ID] = true
			st.Providers++
		}
		if ctx.Err() != nil {
			return st, fmt.Errorf("find providers: %w", ctx.Err())
		}
	}
	for _, id := range d.dir.ids() {
		cands[id] = true
	}
	delete(cands, d.host.ID())

	now := d.o.now()
	var ids []peer.ID
	d.mu.Lock()
	for id, known := range cands {
		if neg, ok := d.negative[id]; !known && ok && now.Before(neg.until) {
			continue
		}
		ids = append(ids, id)
	}
	d.mu.Unlock()
	st.Candidates = len(ids)

	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, d.o.fetchConcurrency)
	)
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			desc, err := d.fetch(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, routing.ErrNotFound):
				d.mu.Lock()
				d.negative[id] = d.negative[id].next(d.o.now(), negativeMin, 2*d.o.refreshInterval)
				d.mu.Unlock()
			case err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded):
				st.Invalid++
				d.log.WithError(err).Debug("descriptor refused")
			case err == nil:
				st.Fetched++
				d.dir.put(desc)
				d.mu.Lock()
				delete(d.negative, id)
				d.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	now = d.o.now()
	d.dir.expire(now)
	d.Recheck()
	d.mu.Lock()
	for id, neg := range d.negative {
		// Kept a while past until, so that a peer that keeps having no
		// descriptor backs off further.
		if !now.Before(neg.until.Add(neg.wait)) {
			delete(d.negative, id)
		}
	}
	d.mu.Unlock()
	if st.Fetched > 0 {
		// Only a round that found relays says anything about absent guards.
		d.guards.observe(func(id peer.ID) bool {
			_, ok := d.dir.get(id)
			return ok
		}, now)
	}
	st.Relays = len(d.dir.all(now))
	st.Duration = time.Since(start)
	return st, errors.Join(errs...)
}

// fetch gets id's descriptor from the DHT and verifies it.
func (d *Discovery) fetch(ctx context.Context, id peer.ID, opts ...routing.Option) (*Descriptor, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.fetchTimeout)
	defer cancel()
	key := DescriptorKey(id)
	b, err := d.dht.GetValue(ctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("get descriptor of %s: %w", id, err)
	}
	desc, err := validator{now: d.o.now, maxSkew: d.o.maxSkew}.verify(key, b)
	if err != nil {
		return nil, err
	}
	if err := d.check(desc); err != nil {
		return nil, err
	}
	return desc, nil
}

// check runs the VerifyRelay option's check.
func (d *Discovery) check(desc *Descriptor) error {
	if d.o.verifyRelay == nil {
		return nil
	}
	if err := d.o.verifyRelay(desc); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRelayRefused, desc.PeerID, err)
	}
	return nil
}

// Recheck runs the VerifyRelay check again over the directory and drops
// the relays it now refuses (a revoked or expired certificate), so that
// they are not chosen from now on. It returns how many it dropped.
func (d *Discovery) Recheck() int {
	if d.o.verifyRelay == nil {
		return 0
	}
	n := d.dir.drop(func(desc *Descriptor) bool {
		err := d.check(desc)
		if err != nil {
			d.log.WithError(err).Debug("relay dropped")
		}
		return err != nil
	})
	return n
}

// Relays returns the verified descriptors that may be chosen now: not
// expired and not marked down.
func (d *Discovery) Relays() []*Descriptor { return d.dir.usable(d.o.now()) }

// Descriptor returns the verified descriptor of id, if the directory has a
// valid one.
func (d *Discovery) Descriptor(id peer.ID) (*Descriptor, bool) {
	desc, ok := d.dir.get(id)
	now := d.o.now()
	if !ok || !now.Before(desc.Expires) || !now.Before(desc.OnionKey.Expires) {
		return nil, false
	}
	return desc, true
}

// Guards returns the entry guards in order of preference.
func (d *Discovery) Guards() []GuardInfo { return d.guards.list() }

// SelectPath picks a path for req from the directory: the exit first, then
// the first usable entry guard, then middles. Descriptors are never
// modified and may be kept.
func (d *Discovery) SelectPath(req PathRequest) ([]*Descriptor, error) {
	now := d.o.now()
	relays := d.dir.usable(now)
	var guards []peer.ID
	if req.Hops != 1 {
		var err error
		guards, err = d.guards.refresh(relays, now)
		if err != nil {
			d.log.WithError(err).Warn("update entry guards")
		}
		if guards == nil {
			guards = []peer.ID{}
		}
	}
	path, err := d.sel.Select(relays, req, guards)
	if errors.Is(err, ErrNoGuard) && len(guards) > 0 {
		// Every guard is marked down. As Tor does when all its primary
		// guards seem unreachable, try them again rather than fail every
		// build until a mark ends: one failure marks a relay down, and in
		// churn all of a client's few guards can have failed once (a
		// restarted relay dialed at its old address) while most are up.
		if down := d.downGuards(guards, now); len(down) > 0 {
			path, err = d.sel.Select(append(slices.Clone(relays), down...), req, guards)
		}
	}
	return path, err
}

// downGuards returns the valid descriptors of the guards marked down.
func (d *Discovery) downGuards(guards []peer.ID, now time.Time) []*Descriptor {
	var out []*Descriptor
	for _, id := range guards {
		if desc, ok := d.Descriptor(id); ok && d.dir.isDown(id, now) {
			out = append(out, desc)
		}
	}
	return out
}

// ReportSuccess tells that a circuit was built through path.
func (d *Discovery) ReportSuccess(path []*Descriptor) {
	for _, h := range path {
		d.dir.clearDown(h.PeerID)
	}
	if len(path) > 1 {
		if err := d.guards.markSuccess(path[0].PeerID); err != nil {
			d.log.WithError(err).Warn("save entry guards")
		}
	}
}

// reportedFailure is an error that says whether the failure of hop i was
// reported by hop i-1 (a refused or unanswered EXTEND) rather than seen
// of hop i by the client (circuit.BuildError implements it).
type reportedFailure interface {
	error
	ReportedByPreviousHop() bool
}

// relayBusy is an error that says whether a relay refused for lack of
// resources (circuit.DestroyedError implements it).
type relayBusy interface {
	error
	RelayBusy() bool
}

// ReportFailure tells that building a circuit through path failed with err.
// A *HopError names the failing hop. When only the hop before it said so
// (an error with ReportedByPreviousHop() true: a refused or unanswered
// EXTEND, which a relay can claim of any next hop to steer clients), the
// relay is kept out briefly (refusedTime, doubling while the same hop
// keeps refusing it) and its descriptor looked up again; a refusal by a
// second hop within refusedWindow blames it in full. Blamed in full, that
// relay is marked down (30 s the
// first time, doubling with each failure before it works again, up to the
// down time), its descriptor is looked up again until a newer one lifts
// the mark (a restarted relay has new addresses or only came back), and,
// if it is the entry guard, a guard failure is counted, once per mark
// (builds that chose it before the mark do not count again); unless the
// relay refused for lack of resources (an error with RelayBusy() true): it
// is then avoided for the suspect time only. A hop whose descriptor in
// the path is older than the directory's is not blamed at all: the build
// met the relay as it was (a restarted relay's old addresses). Any other
// error (a timeout) marks the relays after the guard suspect for the
// shorter suspect time; it never counts against the guard, so a hostile
// middle or exit cannot push a client off its guard.
func (d *Discovery) ReportFailure(path []*Descriptor, err error) {
	if len(path) == 0 {
		return
	}
	now := d.o.now()
	var he *HopError
	if errors.As(err, &he) && he.Hop >= 0 && he.Hop < len(path) {
		id := path[he.Hop].PeerID
		if d.dir.hasNewer(path[he.Hop]) {
			// The build used a descriptor the directory has replaced
			// since (a restarted relay's old addresses): the failure says
			// nothing of the relay as it is now, and a mark made now
			// would be made against the newer descriptor, which nothing
			// newer lifts until the mark ends.
			d.log.WithField("peer", id).WithField("hop", he.Hop).Debug("build failed through a replaced descriptor: relay not blamed")
			return
		}
		if rep, ok := errors.AsType[reportedFailure](err); ok && rep.ReportedByPreviousHop() && he.Hop > 0 {
			by := path[he.Hop-1].PeerID
			if !d.dir.markRefused(id, by, now, refusedTime, min(firstDownTime, d.o.downTime), refusedWindow) {
				d.log.WithField("peer", id).WithField("hop", he.Hop).Debug("relay refused by the previous hop: avoided briefly")
				d.watchDown(id)
				return
			}
			d.log.WithField("peer", id).Debug("relay refused by two previous hops")
		}
		if busy, ok := errors.AsType[relayBusy](err); ok && busy.RelayBusy() {
			// The relay is up and refused for lack of resources (which
			// an attacker can cause): avoid it briefly, never count it
			// against a guard.
			d.dir.markDown(id, now.Add(d.o.suspectTime))
			d.log.WithField("peer", id).WithError(err).Debug("relay busy: avoided a while")
			return
		}
		wasDown := d.dir.markFailed(id, now, min(firstDownTime, d.o.downTime), d.o.downTime)
		d.log.WithField("peer", id).WithField("hop", he.Hop).Debug("relay marked down")
		d.watchDown(id)
		if he.Hop == 0 && len(path) > 1 && !wasDown {
			if _, err := d.guards.markFailure(id, now); err != nil {
				d.log.WithError(err).Warn("save entry guards")
			}
		}
		return
	}
	first := 1
	if len(path) == 1 {
		first = 0
	}
	for _, h := range path[first:] {
		d.dir.markDown(h.PeerID, now.Add(d.o.suspectTime))
	}
	d.log.WithError(err).WithField("relays", len(path)-first).Debug("build failed with no hop named: relays after the guard suspect")
}

// ReportUnreachable tells that the link to relay id broke under open
// circuits (it did not close them with a DESTROY): the relay is likely
// gone, and is marked down as a failing hop is, so that the next build
// goes through another (guard) at once instead of dialing it again. A
// guard failure is counted, once per mark.
func (d *Discovery) ReportUnreachable(id peer.ID) {
	now := d.o.now()
	wasDown := d.dir.markFailed(id, now, min(firstDownTime, d.o.downTime), d.o.downTime)
	d.log.WithField("peer", id).Debug("relay marked down: link lost")
	d.watchDown(id)
	if !wasDown {
		if _, err := d.guards.markFailure(id, now); err != nil {
			d.log.WithError(err).Warn("save entry guards")
		}
	}
}

// watchDown looks the descriptor of relay id up again while id is marked
// down, soon and then with backoff, so that a relay that restarted is used
// again as soon as it has republished, not when its mark ends. It does
// nothing before Start, after Close, or when id is already watched.
func (d *Discovery) watchDown(id peer.ID) { d.watch(id, time.Time{}) }

// watchGone is watchDown for a relay in the directory to which the node
// lost its last connection (notified by the host's network): the relay
// may have died and come back at new addresses (a relay without fixed
// ports does at every start), while the directory still holds the old
// ones, so that the next build through it (a backup guard when the guard
// dies, or a next hop of this relay) would dial them and wait for the
// QUIC handshake timeout before trying elsewhere. Its descriptor is
// looked up until a newer one comes, for goneWatchFor at most, and for at
// most maxGoneWatches relays at a time: a relay that drops and takes
// connections again costs lookups of its own descriptor only.
func (d *Discovery) watchGone(id peer.ID) {
	if _, ok := d.dir.get(id); !ok {
		return
	}
	d.watch(id, d.o.now().Add(goneWatchFor))
}

const (
	goneWatchFor   = 15 * time.Second
	maxGoneWatches = 16
)

// watch looks up id's descriptor while id is marked down or until
// atLeast, whichever is later, and stops once a newer descriptor is stored
// (and leaves id usable). A later atLeast extends a watch under way.
func (d *Discovery) watch(id peer.ID, atLeast time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.started {
		return
	}
	if until, ok := d.watching[id]; ok {
		d.watching[id] = later(until, atLeast)
		return
	}
	if !atLeast.IsZero() && d.goneWatches >= maxGoneWatches {
		return
	}
	gone := !atLeast.IsZero()
	if gone {
		d.goneWatches++
	}
	d.watching[id] = atLeast
	d.wg.Go(func() {
		defer func() {
			d.mu.Lock()
			delete(d.watching, id)
			if gone {
				d.goneWatches--
			}
			d.mu.Unlock()
		}()
		t := time.NewTimer(watchDownMin)
		defer t.Stop()
		for wait := watchDownMin; ; wait = min(2*wait, watchDownMax) {
			select {
			case <-d.ctx.Done():
				return
			case <-t.C:
			}
			now := d.o.now()
			d.mu.Lock()
			until := d.watching[id]
			d.mu.Unlock()
			if !d.dir.isDown(id, now) && !now.Before(until) {
				return
			}
			// The first answers, not the whole lookup (as RelayAddrs):
			// the relays that just died are often among the DHT peers
			// near the key, and the default quorum waits for them, up
			// to the fetch timeout, each round. An old descriptor from
			// the first answers only means another round.
			desc, err := d.fetch(d.ctx, id, dht.Quorum(resolveQuorum))
			if err == nil && d.dir.put(desc) && !d.dir.isDown(id, d.o.now()) {
				d.log.WithField("peer", id).Debug("relay back: newer descriptor")
				return
			}
			t.Reset(wait)
		}
	})
}

// DHTPeers is the number of peers in the DHT routing table.
func (d *Discovery) DHTPeers() int { return d.dht.RoutingTable().Size() }
