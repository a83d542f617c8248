package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pikcio/pikcio/internal/earlydata"
	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/sirupsen/logrus"
)

// Pool hands out streams on onion circuits. It keeps Prebuilt clean circuits
// ready, binds a circuit to an isolation key on first use (connections with
// different keys never share a circuit), retires circuits that are dirty or
// that NewIdentity retired, closes a retired circuit when its last stream
// ends, and drops and replaces circuits that die.
//
// Dial works from NewPool on; Start starts the background builder that keeps
// the prebuilt circuits and sweeps dirty idle ones. Close stops everything.
type Pool struct {
	build BuildFunc
	log   *logrus.Entry

	ctx    context.Context // canceled by Close; parent of every build
	cancel context.CancelFunc
	wake   chan struct{} // pokes the builder; capacity 1
	wg     sync.WaitGroup

	mu            sync.Mutex
	opts          PoolOptions
	now           func() time.Time
	started       bool
	closed        bool
	circs         map[*poolCircuit]struct{} // live circuits, bound or clean
	pending       map[string]*pendingBuild  // on-demand builds by isolation key
	groups        map[string]*group         // isolation keys with live circuits
	closing       []*poolCircuit            // removed under mu, closed by unlock
	nextID        uint64
	nextGroup     int
	prebuilding   int
	exitsKnown    bool // circuits name their exits (ExitID)
	backoff       time.Duration
	prebuildAfter time.Time
	stats         PoolStats
	connects      connectTimes    // how soon the last opens were answered
	died          []diedCircuit   // circuits that died lately, whose relays builds pass over
	observer      func(PoolEvent) // see SetObserver
}

type poolCircuit struct {
	c        Circuit
	id       uint64
	exit     string        // the exit relay's ID, if the circuit tells it
	relays   []string      // the IDs of its hops after the first, if it tells them
	guard    string        // the ID of its first hop, if it tells it
	rtt      time.Duration // the circuit's round-trip time, if it tells it
	built    time.Time
	bound    bool // claimed by an isolation group
	key      string
	group    *group
	firstUse time.Time
	streams  int  // open streams plus opens in progress
	retired  bool // takes no new streams
	removed  bool // out of the pool; closed or being closed
	// full: the exit refused a stream for the circuit's stream cap; no
	// new streams until one of its streams ends.
	full bool
}

// diedCircuit is a circuit that died (not closed by the pool), whose exit
// and relays after the guard builds pass over until until.
type diedCircuit struct {
	pc    *poolCircuit
	until time.Time
}

// diedAvoidFor is how long builds pass over the relays of a circuit that
// died, while other relays can serve. A circuit dies when one of its
// relays or links does, which the client cannot tell apart; a new path
// through the dead relay would fail only when the hop before it gives up
// dialing it (a QUIC handshake to a dead port waits a second), so for a
// few seconds the relays that may be dead are left for last.
const diedAvoidFor = 5 * time.Second

type group struct {
	index    int
	circuits int
}

type pendingBuild struct {
	done chan struct{}
	err  error
	pc   *poolCircuit // the circuit built, once done without error
}

// PoolStats are the pool's counters.
type PoolStats struct {
	Circuits      int    // live circuits, including retired ones still carrying streams
	Clean         int    // prebuilt circuits not yet claimed
	Retired       int    // live circuits that take no new streams
	Streams       int    // open streams
	Building      int    // builds in flight
	Groups        int    // isolation groups with a live circuit
	Builds        uint64 // successful builds since NewPool
	BuildFailures uint64
	Retries       uint64 // stream opens retried through another exit (circuit failure, unanswered BEGIN)
	// BeginTimeouts counts stream opens that got no answer within the
	// bound learned from their circuit's round trip; each circuit was
	// retired as suspect, and the open retried through another exit
	// while retries and time were left.
	BeginTimeouts uint64
	// FullRetries counts stream opens an exit refused because their
	// circuit had all the streams it allows; each went to another
	// circuit of the same isolation group.
	FullRetries uint64
	// Replays counts optimistic streams whose BEGIN failed for a circuit
	// reason after their first bytes had left, and whose BEGIN and bytes
	// went again on another circuit (see replayConn).
	Replays uint64
}

// CircuitInfo describes one live circuit for a status page. It names the
// isolation group by index, never by the credentials behind it.
type CircuitInfo struct {
	ID      uint64
	Circuit Circuit       // the circuit itself
	Group   int           // isolation group index; 0 for a clean circuit
	Streams int           // open streams
	Age     time.Duration // since the build finished
	Used    time.Duration // since first claimed; 0 for a clean circuit
	Dirty   bool          // used for longer than Dirtiness
	Retired bool          // takes no new streams (dirty, new identity, or failed)
}

var _ Dialer = (*Pool)(nil)

// NewPool returns a pool that builds circuits with build.
func NewPool(build BuildFunc, opts PoolOptions) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		build:   build,
		log:     logrus.WithField("component", "proxy.pool"),
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		opts:    opts.withDefaults(),
		now:     time.Now,
		circs:   make(map[*poolCircuit]struct{}),
		pending: make(map[string]*pendingBuild),
		groups:  make(map[string]*group),
	}
}

// Start starts the background builder. It is a no-op after the first call or
// after Close.
func (p *Pool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	p.wg.Add(1)
	go p.run()
}

// Close closes every circuit, stops the builder and waits for all of the
// pool's goroutines. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		for pc := range p.circs {
			p.removeLocked(pc)
		}
	}
	p.unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

// Options returns the current options, defaults filled in.
func (p *Pool) Options() PoolOptions {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts
}

// SetOptions replaces the options (hot reload). New values apply to new work:
// a shorter Dirtiness retires circuits at their next use or sweep, open
// streams are never cut.
func (p *Pool) SetOptions(opts PoolOptions) {
	p.mu.Lock()
	p.opts = opts.withDefaults()
	p.mu.Unlock()
	p.poke()
}

// SetDirtiness changes only Dirtiness; see SetOptions.
func (p *Pool) SetDirtiness(d time.Duration) {
	p.mu.Lock()
	o := p.opts
	p.mu.Unlock()
	o.Dirtiness = d
	p.SetOptions(o)
}

// NewIdentity retires every circuit for new streams at once: new connections
// go to fresh circuits, open streams continue, and each retired circuit closes
// when its last stream ends. The builder starts replacing the prebuilt ones.
func (p *Pool) NewIdentity() {
	p.mu.Lock()
	n := 0
	for pc := range p.circs {
		if !pc.retired {
			p.retireLocked(pc)
			n++
		}
	}
	p.unlock()
	p.log.WithField("circuits", n).Info("new identity: retired all circuits")
	p.poke()
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Circuits = len(p.circs)
	for pc := range p.circs {
		if !pc.bound && !pc.retired {
			s.Clean++
		}
		if pc.retired {
			s.Retired++
		}
		s.Streams += pc.streams
	}
	s.Building = len(p.pending) + p.prebuilding
	s.Groups = len(p.groups)
	return s
}

// Snapshot describes every live circuit, ordered by ID.
func (p *Pool) Snapshot() []CircuitInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := make([]CircuitInfo, 0, len(p.circs))
	for pc := range p.circs {
		ci := CircuitInfo{
			ID:      pc.id,
			Circuit: pc.c,
			Streams: pc.streams,
			Age:     now.Sub(pc.built),
			Retired: pc.retired,
		}
		if pc.bound {
			ci.Group = pc.group.index
			ci.Used = now.Sub(pc.firstUse)
			ci.Dirty = ci.Used >= p.opts.Dirtiness
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b CircuitInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Dial opens a stream to host:port on a circuit of the isolation group
// isolationKey. A dial that fails because its circuit failed (not because the
// exit reported a destination error), or whose BEGIN gets no answer within
// the bound learned from the circuit's round trip, is retried on a circuit
// through another exit, up to maxStreamRetries times and within
// ConnectTimeout from the Dial in all (as Tor retries a stream on new
// circuits until its stream timeout); the failed circuit is retired. A
// destination error the exit reported (refused, unreachable, no such
// name, the exit's own connect timeout) is never retried: the destination
// does not see the attempt again through another exit. One the exit
// refuses because the circuit is full goes to another circuit of the
// same group (a new one if need be). Errors wrap the endreason sentinels,
// context errors, ErrClosed or ErrTooManyCircuits.
func (p *Pool) Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error) {
	p.mu.Lock()
	deadline := time.Now().Add(p.opts.ConnectTimeout)
	p.mu.Unlock()
	d := &dial{p: p, key: isolationKey, host: host, port: port, deadline: deadline}
	conn, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	if earlydata.Wanted(ctx) {
		return newReplayConn(d, conn), nil
	}
	return conn, nil
}

// dial is one Dial: what it opens and the retries it has used. A stream
// opened with optimistic data keeps it, so that a BEGIN that fails after
// the stream was handed out is retried by the same rules (replayConn).
type dial struct {
	p          *Pool
	key, host  string
	port       uint16
	deadline   time.Time // ConnectTimeout after the Dial: no retry after it
	avoid      avoidance // the exits and relays of the circuits that failed it
	retries    int       // retries after a circuit failure or an unanswered BEGIN
	fullMisses int       // circuits that were full
}

// bounded reports whether the next attempt gives up at the begin bound
// (another will follow) rather than waiting for ConnectTimeout.
func (d *dial) bounded() bool { return d.retries < maxStreamRetries }

// open opens the stream on a circuit of the dial's group, retrying as
// Dial says.
func (d *dial) open(ctx context.Context) (*poolStream, error) {
	for {
		pc, err := d.p.claim(ctx, d.key, d.avoid)
		if err != nil {
			return nil, err
		}
		conn, err := d.p.open(ctx, pc, d.host, d.port, d.bounded(), d.deadline)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil || !d.retry(pc, err) {
			return nil, err
		}
	}
}

// retry reports whether a stream open that failed with err on pc is tried
// again, and keeps the books: a full circuit is marked so, an unanswered
// or broken one retired, the stats counted. The stream on pc must have
// been released.
func (d *dial) retry(pc *poolCircuit, err error) bool {
	p := d.p
	p.mu.Lock()
	defer p.unlock()
	switch {
	case p.closed:
	case errors.Is(err, endreason.ErrCircuitFull) && d.fullMisses < maxFullRetries:
		d.fullMisses++
		if !pc.removed {
			pc.full = true
		}
		p.stats.FullRetries++
		return true
	case errors.Is(err, errBeginTimeout) || circuitFailure(err):
		p.retireLocked(pc)
		if errors.Is(err, errBeginTimeout) {
			p.stats.BeginTimeouts++
		}
		if !d.bounded() || !time.Now().Before(d.deadline) {
			return false
		}
		d.retries++
		d.avoid = d.avoid.with(pc)
		p.stats.Retries++
		p.log.WithError(err).WithField("retry", d.retries).Debug("stream open failed on its circuit; retrying through another exit")
		return true
	}
	return false
}

// errBeginTimeout: a BEGIN got no answer within the circuit's begin bound.
var errBeginTimeout = errors.New("no answer from the exit within the circuit's round-trip bound")

// beginTimeout is how long a bounded attempt of a stream open waits for
// the exit's answer on a circuit with round trip rtt: the exit's connect
// to the destination plus a margin of round trips, within ConnectTimeout;
// less when the opens so far were answered sooner (learned, from
// connectTimes.bound; 0 before it knows), but never under beginFloor.
// 0 (rtt unknown) leaves ConnectTimeout alone.
func beginTimeout(rtt, connect, learned time.Duration) time.Duration {
	if rtt <= 0 {
		return connect
	}
	b := beginMin + beginRTTs*rtt
	if learned > 0 {
		b = min(b, max(beginFloor, learned))
	}
	return min(connect, b)
}

// connectTimes keeps how long the last stream opens took from BEGIN to
// the exit's answer, as Tor learns its circuit build timeout from the
// builds it saw: a hung exit is then left after about a second where
// destinations answer in milliseconds, and after the full bound where
// they take seconds.
type connectTimes struct {
	last [connectSamples]time.Duration
	n    int
}

func (c *connectTimes) add(d time.Duration) {
	c.last[c.n%connectSamples] = d
	c.n++
}

// bound is beginSlowest times the slowest open kept, or 0 with fewer
// than minConnectSamples.
func (c *connectTimes) bound() time.Duration {
	if c.n < minConnectSamples {
		return 0
	}
	var slowest time.Duration
	for _, d := range c.last[:min(c.n, connectSamples)] {
		slowest = max(slowest, d)
	}
	return beginSlowest * slowest
}

// beginBound is the begin bound of a circuit with round trip rtt now.
func (p *Pool) beginBound(rtt time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return beginTimeout(rtt, p.opts.ConnectTimeout, p.connects.bound())
}

// answered records a stream open the exit answered took since it began.
func (p *Pool) answered(took time.Duration) {
	p.mu.Lock()
	p.connects.add(took)
	p.mu.Unlock()
}

// circuitFailure reports whether a failed OpenStream says the circuit is
// broken rather than the destination unreachable: anything that is not an
// exit-reported reason, or one that means the path is unusable.
func circuitFailure(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, endreason.ErrNotExit) || errors.Is(err, endreason.ErrProtocol) {
		return true
	}
	if errors.Is(err, endreason.ErrCircuitFull) || errors.Is(err, errBeginTimeout) {
		return false // handled on their own
	}
	for _, s := range []error{endreason.ErrMisc, endreason.ErrPolicy, endreason.ErrRefused,
		endreason.ErrUnreachable, endreason.ErrResolve, endreason.ErrTimeout, endreason.ErrReset} {
		if errors.Is(err, s) {
			return false
		}
	}
	return true
}

func (p *Pool) open(ctx context.Context, pc *poolCircuit, host string, port uint16, bounded bool, deadline time.Time) (*poolStream, error) {
	octx, bctx, cancel := p.openContexts(ctx, pc, time.Now(), bounded, deadline)
	defer cancel()
	began := time.Now()
	conn, err := pc.c.OpenStream(bctx, host, port)
	if err != nil {
		p.release(pc)
		return nil, p.openErr(ctx, octx, bctx, pc, host, port, err)
	}
	if !earlydata.Wanted(ctx) {
		p.answered(time.Since(began))
	}
	return &poolStream{Conn: conn, p: p, pc: pc, host: host, port: port, began: time.Now()}, nil
}

// openContexts bounds a stream open that began at start: octx by
// ConnectTimeout and by deadline (the Dial's, if not zero), bctx (when
// bounded: another attempt may follow) by the begin bound learned from the
// circuit's round trip, with errBeginTimeout as its cause.
func (p *Pool) openContexts(ctx context.Context, pc *poolCircuit, start time.Time, bounded bool, deadline time.Time) (octx, bctx context.Context, cancel context.CancelFunc) {
	p.mu.Lock()
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	end := start.Add(timeout)
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	octx, ocancel := context.WithDeadline(ctx, end)
	bctx, bcancel := octx, context.CancelFunc(func() {})
	if bt := p.beginBound(pc.rtt); bounded && start.Add(bt).Before(end) {
		bctx, bcancel = context.WithDeadlineCause(octx, start.Add(bt), errBeginTimeout)
	}
	return octx, bctx, func() { bcancel(); ocancel() }
}

// openErr says why a stream open failed: errBeginTimeout when the begin
// bound expired, context.DeadlineExceeded when ConnectTimeout did.
func (p *Pool) openErr(ctx, octx, bctx context.Context, pc *poolCircuit, host string, port uint16, err error) error {
	switch {
	case ctx.Err() == nil && octx.Err() == nil && context.Cause(bctx) == errBeginTimeout:
		err = fmt.Errorf("%w after %v: %w", errBeginTimeout, p.beginBound(pc.rtt), err)
	case ctx.Err() == nil && octx.Err() != nil && !errors.Is(err, context.DeadlineExceeded):
		// The circuit reported the expired deadline its own way.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return fmt.Errorf("open stream to %s: %w", net.JoinHostPort(host, strconv.Itoa(int(port))), err)
}

// connected waits for the exit's answer to an optimistic stream's BEGIN,
// within the same bounds as open, counted from when the BEGIN left. A
// stream that cannot tell is taken as connected.
func (p *Pool) connected(ctx context.Context, s *poolStream, bounded bool, deadline time.Time) error {
	c, ok := s.Conn.(interface {
		Connected(ctx context.Context) error
	})
	if !ok {
		return nil
	}
	octx, bctx, cancel := p.openContexts(ctx, s.pc, s.began, bounded, deadline)
	defer cancel()
	if err := c.Connected(bctx); err != nil {
		return p.openErr(ctx, octx, bctx, s.pc, s.host, s.port, err)
	}
	p.answered(time.Since(s.began))
	return nil
}

// claim returns a circuit for key with one stream reserved on it: the key's
// circuit if it is still usable, else a clean prebuilt one, else a new build.
// Circuits avoid avoids (by their exit or a relay after the first hop)
// are passed over while others exist.
func (p *Pool) claim(ctx context.Context, key string, avoid avoidance) (*poolCircuit, error) {
	for died := 0; ; {
		p.mu.Lock()
		if p.closed {
			p.unlock()
			return nil, ErrClosed
		}
		now := p.now()
		var best, clean *poolCircuit
		for pc := range p.circs {
			if !p.usableLocked(pc, now) {
				continue
			}
			switch {
			case pc.bound && pc.key == key:
				if better(pc, best, avoid, func(a, b *poolCircuit) bool { return a.firstUse.After(b.firstUse) }) {
					best = pc
				}
			case !pc.bound:
				if better(pc, clean, avoid, func(a, b *poolCircuit) bool { return a.built.Before(b.built) }) {
					clean = pc
				}
			}
		}
		if clean != nil && (best == nil || avoid.avoids(best) && !avoid.avoids(clean)) {
			p.bindLocked(clean, key, now)
			best = clean
			p.poke()
		}
		if best != nil {
			best.streams++
			p.unlock()
			return best, nil
		}
		if died == 2 {
			p.unlock()
			return nil, fmt.Errorf("get circuit: fresh circuits keep dying: %w", ErrNoCircuit)
		}
		pb := p.pending[key]
		if pb == nil {
			if err := p.makeRoomLocked(); err != nil {
				p.unlock()
				return nil, err
			}
			pb = &pendingBuild{done: make(chan struct{})}
			p.pending[key] = pb
			p.wg.Add(1)
			go p.buildFor(key, pb, avoid)
		}
		p.unlock()
		select {
		case <-pb.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for circuit: %w", ctx.Err())
		}
		if pb.err != nil {
			return nil, pb.err
		}
		p.mu.Lock()
		if pb.pc.removed {
			died++ // other waiters filling it up is not dying
		}
		p.mu.Unlock()
	}
}

// better reports whether pc is a better choice than cur: not avoided if
// cur is, else by less.
func better(pc, cur *poolCircuit, avoid avoidance, less func(a, b *poolCircuit) bool) bool {
	if cur == nil {
		return true
	}
	if a, b := avoid.avoids(pc), avoid.avoids(cur); a != b {
		return b
	}
	return less(pc, cur)
}

// usableLocked reports whether pc takes new streams now, and retires it if it
// has become dirty or died.
func (p *Pool) usableLocked(pc *poolCircuit, now time.Time) bool {
	if pc.retired || pc.full || pc.streams >= p.opts.MaxStreamsPerCircuit {
		return false
	}
	select {
	case <-pc.c.Done():
		p.removeLocked(pc)
		return false
	default:
	}
	if pc.bound && now.Sub(pc.firstUse) >= p.opts.Dirtiness {
		p.retireLocked(pc)
		return false
	}
	return true
}

func (p *Pool) bindLocked(pc *poolCircuit, key string, now time.Time) {
	g := p.groups[key]
	if g == nil {
		p.nextGroup++
		g = &group{index: p.nextGroup}
		p.groups[key] = g
	}
	g.circuits++
	pc.bound, pc.key, pc.group, pc.firstUse = true, key, g, now
}

// retireLocked stops pc from taking new streams and closes it if it has none.
func (p *Pool) retireLocked(pc *poolCircuit) {
	pc.retired = true
	if pc.streams == 0 {
		p.removeLocked(pc)
	}
}

// removeLocked takes pc out of the pool; unlock closes it.
func (p *Pool) removeLocked(pc *poolCircuit) {
	if pc.removed {
		return
	}
	pc.removed, pc.retired = true, true
	delete(p.circs, pc)
	p.observeLocked(PoolEvent{ID: pc.id, Group: groupIndex(pc)})
	if pc.bound {
		pc.group.circuits--
		if pc.group.circuits == 0 {
			delete(p.groups, pc.key)
		}
	}
	p.closing = append(p.closing, pc)
}

// unlock releases mu and closes the circuits removed meanwhile.
func (p *Pool) unlock() {
	cl := p.closing
	p.closing = nil
	p.mu.Unlock()
	for _, pc := range cl {
		_ = pc.c.Close()
		p.log.WithField("circuit", pc.id).Debug("circuit closed")
	}
}

// release ends one stream (or a failed open) on pc.
func (p *Pool) release(pc *poolCircuit) {
	p.mu.Lock()
	pc.streams--
	pc.full = false // the exit has room again
	if pc.streams == 0 && !pc.removed {
		if pc.bound && p.now().Sub(pc.firstUse) >= p.opts.Dirtiness {
			pc.retired = true
		}
		if pc.retired {
			p.removeLocked(pc)
		}
	}
	p.unlock()
}

// makeRoomLocked makes sure one more build stays within MaxCircuits, closing
// the idle circuit claimed longest ago if needed.
func (p *Pool) makeRoomLocked() error {
	if len(p.circs)+len(p.pending)+p.prebuilding < p.opts.MaxCircuits {
		return nil
	}
	var victim *poolCircuit
	for pc := range p.circs {
		if pc.streams != 0 || pc.retired {
			continue
		}
		if victim == nil || !pc.bound || (victim.bound && pc.firstUse.Before(victim.firstUse)) {
			victim = pc
		}
	}
	if victim == nil {
		return ErrTooManyCircuits
	}
	p.retireLocked(victim)
	return nil
}

// addLocked puts a freshly built circuit into the pool and watches it.
func (p *Pool) addLocked(c Circuit) *poolCircuit {
	p.nextID++
	pc := &poolCircuit{c: c, id: p.nextID, built: p.now()}
	if e, ok := c.(interface{ ExitID() string }); ok {
		pc.exit = e.ExitID()
		p.exitsKnown = p.exitsKnown || pc.exit != ""
	}
	if r, ok := c.(interface{ RelayIDs() []string }); ok {
		pc.relays = r.RelayIDs()
	}
	if g, ok := c.(interface{ GuardID() string }); ok {
		pc.guard = g.GuardID()
	}
	if r, ok := c.(interface{ RTT() time.Duration }); ok {
		pc.rtt = r.RTT()
	}
	p.circs[pc] = struct{}{}
	p.stats.Builds++
	p.observeLocked(PoolEvent{Built: true, ID: pc.id})
	p.wg.Add(1)
	go p.watch(pc)
	return pc
}

// watch drops pc from the pool when it dies, and pokes the builder so that a
// clean circuit replaces it.
func (p *Pool) watch(pc *poolCircuit) {
	defer p.wg.Done()
	select {
	case <-pc.c.Done():
	case <-p.ctx.Done():
		return
	}
	p.mu.Lock()
	died := !pc.removed
	p.removeLocked(pc)
	if died && (pc.exit != "" || len(pc.relays) > 0) {
		p.died = append(p.diedLocked(), diedCircuit{pc: pc, until: p.now().Add(diedAvoidFor)})
	}
	p.unlock()
	if died {
		p.log.WithField("circuit", pc.id).Info("circuit died; replacing it")
		p.poke()
	}
}

// diedLocked drops the circuits that died more than diedAvoidFor ago and
// returns the others.
func (p *Pool) diedLocked() []diedCircuit {
	now := p.now()
	p.died = slices.DeleteFunc(p.died, func(d diedCircuit) bool { return !now.Before(d.until) })
	return p.died
}

// buildCircuit builds a circuit avoiding avoid and the relays of the
// circuits that died lately.
func (p *Pool) buildCircuit(avoid avoidance) (Circuit, error) {
	p.mu.Lock()
	timeout := p.opts.BuildTimeout
	for _, d := range p.diedLocked() {
		avoid = avoid.with(d.pc)
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if len(avoid.exits) > 0 {
		ctx = WithAvoidExits(ctx, avoid.exits)
	}
	if len(avoid.relays) > 0 {
		ctx = WithAvoidRelays(ctx, avoid.relays)
	}
	c, err := p.build(ctx)
	if err != nil {
		return nil, fmt.Errorf("build circuit: %w", err)
	}
	return c, nil
}

// buildFor builds a circuit for the isolation group key; Dials for key wait
// on pb.
func (p *Pool) buildFor(key string, pb *pendingBuild, avoid avoidance) {
	defer p.wg.Done()
	c, err := p.buildCircuit(avoid)
	p.mu.Lock()
	delete(p.pending, key)
	switch {
	case err != nil:
		p.stats.BuildFailures++
		pb.err = err
	case p.closed:
		pb.err = ErrClosed
	default:
		pc := p.addLocked(c)
		p.bindLocked(pc, key, p.now())
		pb.pc = pc
		c = nil
	}
	close(pb.done)
	p.unlock()
	if c != nil {
		_ = c.Close()
	}
	if err != nil {
		p.log.WithError(err).Warn("circuit build failed")
	}
}

func (p *Pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the builder: it keeps Prebuilt clean circuits and closes dirty idle
// and stale clean ones.
func (p *Pool) run() {
	defer p.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		p.mu.Lock()
		next := p.maintainLocked()
		p.unlock()
		timer.Reset(next)
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// maintainLocked sweeps the pool, starts the prebuilds that are due and
// returns when to look again.
func (p *Pool) maintainLocked() time.Duration {
	if p.closed {
		return maxSweepInterval
	}
	now := p.now()
	clean := 0
	for pc := range p.circs {
		if !p.usableLocked(pc, now) {
			continue
		}
		if !pc.bound {
			if now.Sub(pc.built) >= cleanMaxAge {
				p.retireLocked(pc)
				continue
			}
			clean++
		}
	}
	next := min(maxSweepInterval, max(p.opts.Dirtiness/4, 100*time.Millisecond))
	for clean+p.prebuilding < p.opts.Prebuilt &&
		len(p.circs)+len(p.pending)+p.prebuilding < p.opts.MaxCircuits {
		if wait := p.prebuildAfter.Sub(now); wait > 0 {
			next = min(next, wait)
			break
		}
		if (p.exitsKnown || p.stats.Builds == 0) && p.prebuilding > 0 {
			// One at a time while circuits name their exits (or
			// before the first says whether they do): each avoids
			// the exits of the spares already there.
			break
		}
		p.prebuilding++
		p.wg.Add(1)
		go p.prebuild(p.spareAvoidanceLocked())
	}
	return next
}

func (p *Pool) prebuild(avoid avoidance) {
	defer p.wg.Done()
	c, err := p.buildCircuit(avoid)
	p.mu.Lock()
	p.prebuilding--
	switch {
	case err != nil:
		p.stats.BuildFailures++
		p.backoff = min(max(2*p.backoff, minBuildBackoff), maxBuildBackoff)
		p.prebuildAfter = p.now().Add(p.backoff)
	case p.closed:
	default:
		p.addLocked(c)
		p.backoff = 0
		c = nil
	}
	p.unlock()
	if c != nil {
		_ = c.Close()
	}
	if err != nil && p.ctx.Err() == nil {
		p.log.WithError(err).Warn("prebuilding a circuit failed")
	}
	p.poke()
}

// avoidance is what a build should pass over while other relays can serve:
// exits, and relays in any role after the first hop.
type avoidance struct {
	exits, relays []string
}

// avoids reports whether a avoids pc: its exit, or any relay of it, its
// guard included (the middle of a circuit whose BEGIN went unanswered may
// be what hung, and the hung exit may be another circuit's middle or
// guard). Only the relays after a failed circuit's guard are avoided:
// circuits share the client's guard.
func (a avoidance) avoids(pc *poolCircuit) bool {
	if pc.exit != "" && slices.Contains(a.exits, pc.exit) {
		return true
	}
	if pc.guard != "" && slices.Contains(a.relays, pc.guard) {
		return true
	}
	for _, r := range pc.relays {
		if slices.Contains(a.relays, r) {
			return true
		}
	}
	return false
}

// with returns a that also avoids pc's exit and relays.
func (a avoidance) with(pc *poolCircuit) avoidance {
	out := avoidance{exits: slices.Clone(a.exits), relays: slices.Clone(a.relays)}
	if pc.exit != "" && !slices.Contains(out.exits, pc.exit) {
		out.exits = append(out.exits, pc.exit)
	}
	for _, r := range pc.relays {
		if !slices.Contains(out.relays, r) {
			out.relays = append(out.relays, r)
		}
	}
	return out
}

// spareAvoidanceLocked returns what a prebuild should avoid: the exits of
// the clean circuits, and every relay beyond their guard. The spares a
// pool keeps then share no exit and no middle, so that when one relay
// dies the next stream still finds a spare that did not go through it.
func (p *Pool) spareAvoidanceLocked() avoidance {
	var a avoidance
	for pc := range p.circs {
		if !pc.bound && !pc.retired {
			a = a.with(pc)
		}
	}
	return a
}

type avoidExitsKey struct{}

// WithAvoidExits returns ctx telling a BuildFunc which exits (by the IDs
// their circuits' ExitID methods give) the pool would rather the new
// circuit did not use: it asks, and a BuildFunc with no other exit may
// use one of them anyway.
func WithAvoidExits(ctx context.Context, exits []string) context.Context {
	return context.WithValue(ctx, avoidExitsKey{}, slices.Clone(exits))
}

// AvoidExits returns the exits WithAvoidExits put in ctx.
func AvoidExits(ctx context.Context) []string {
	v, _ := ctx.Value(avoidExitsKey{}).([]string)
	return v
}

type avoidRelaysKey struct{}

// WithAvoidRelays returns ctx telling a BuildFunc which relays (by the IDs
// their circuits' RelayIDs methods give) the pool would rather the new
// circuit did not use beyond its first hop, as middle or exit: the other
// spares' relays, or those of a circuit that left a stream unanswered.
// Like WithAvoidExits it asks; a BuildFunc with no other relay may use them.
func WithAvoidRelays(ctx context.Context, relays []string) context.Context {
	return context.WithValue(ctx, avoidRelaysKey{}, slices.Clone(relays))
}

// AvoidRelays returns the relays WithAvoidRelays put in ctx.
func AvoidRelays(ctx context.Context) []string {
	v, _ := ctx.Value(avoidRelaysKey{}).([]string)
	return v
}

// poolStream is a stream on a pool circuit; closing it releases the circuit.
type poolStream struct {
	net.Conn
	p     *Pool
	pc    *poolCircuit
	host  string
	port  uint16
	began time.Time // when OpenStream returned
	once  sync.Once
}

func (s *poolStream) Close() error {
	err := s.Conn.Close()
	s.once.Do(func() { s.p.release(s.pc) })
	return err
}

// CloseWrite half-closes the stream.
func (s *poolStream) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Close()
}

// LocalAddr is always a *net.TCPAddr, as go-socks5 asserts.
func (s *poolStream) LocalAddr() net.Addr {
	if a, ok := s.Conn.LocalAddr().(*net.TCPAddr); ok {
		return a
	}
	return &net.TCPAddr{IP: net.IPv4zero}
}

// WriteTo lets io.Copy relay without holding a large buffer while idle.
func (s *poolStream) WriteTo(w io.Writer) (int64, error) {
	return copyAdaptive(w, s.Conn)
}
