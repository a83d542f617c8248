package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Relay serves the circuit protocol on a libp2p host: it answers CREATE,
// forwards cells between hops, extends circuits, and, when it has an
// ExitDialer, opens streams at the exit.
type Relay struct {
	host    host.Host
	opts    RelayOptions
	keys    *onionKeyring
	replay  *replayCache
	limiter *rate.Limiter                // handshakes
	bw      atomic.Pointer[rate.Limiter] // bytes sent; nil: unlimited
	// buffered bounds the stream receive windows of all circuits (cells),
	// exitConns the open exit connections.
	buffered, exitConns *budget
	log                 logrus.FieldLogger
	// stop is canceled by Close: it ends AdmitPeer calls under way.
	stop     context.Context
	stopFunc context.CancelFunc

	mu       sync.Mutex
	circuits map[*relayCirc]struct{}
	pending  map[network.Stream]peer.ID // links still in their handshake
	perPeer  map[peer.ID]int            // circuits and pending links
	pendPeer map[peer.ID]int            // pending links
	peerHS   map[peer.ID]*rate.Limiter  // handshakes per previous hop
	closed   bool
	wg       sync.WaitGroup
	join     joinTables                   // intro point and rendezvous relay (join.go)
	records  atomic.Pointer[recordServer] // ServeRecords (records.go)

	total     atomic.Uint64 // circuits accepted in total
	forwarded atomic.Uint64 // bytes of cells relayed or handled
	drops     atomic.Uint64 // DROP cells for this relay

	// tap, when set by a test before any circuit, sees every cell this
	// relay passes on, after its own layer is removed or added: what a
	// curious relay could learn. It may change the cell to test tampering.
	tap func(forward bool, cell []byte)
	// peek, when set by a test, sees every forward relay body once this
	// relay's layer is off, before it checks whether the body is for it,
	// and the authenticator it expects: what a colluding relay could read
	// or undo.
	peek func(body, want []byte)
}

// NewRelay starts serving the circuit protocol on h, signing its onion keys
// with h's identity key.
func NewRelay(h host.Host, opts RelayOptions) (*Relay, error) {
	opts = opts.withDefaults()
	sk := h.Peerstore().PrivKey(h.ID())
	if sk == nil {
		return nil, fmt.Errorf("new relay: no private key for host %s", h.ID().ShortString())
	}
	now := time.Now()
	keys, err := openOnionKeyring(sk, opts.OnionKeyLifetime, opts.OnionKeyGrace, now, opts.OnionKeyFile)
	if err != nil {
		return nil, fmt.Errorf("new relay: %w", err)
	}
	maxReplay := int(2*opts.ReplayWindow.Seconds()*opts.HandshakesPerSecond) + opts.HandshakeBurst
	r := &Relay{
		host:     h,
		opts:     opts,
		keys:     keys,
		replay:   newReplayCache(opts.ReplayWindow, maxReplay),
		limiter:  rate.NewLimiter(rate.Limit(opts.HandshakesPerSecond), opts.HandshakeBurst),
		log:      logrus.WithField("component", "relay"),
		circuits: make(map[*relayCirc]struct{}),
		pending:  make(map[network.Stream]peer.ID),
		perPeer:  make(map[peer.ID]int),
		pendPeer: make(map[peer.ID]int),
		peerHS:   make(map[peer.ID]*rate.Limiter),

		buffered:  newBudget(int(opts.MaxBufferedBytes / CellSize)),
		exitConns: newBudget(opts.MaxExitStreams),
	}
	r.stop, r.stopFunc = context.WithCancel(context.Background())
	r.setBandwidth(opts.BandwidthRate, opts.BandwidthBurst)
	h.SetStreamHandler(ProtocolID, r.handle)
	return r, nil
}

// SetLimits changes the relay's caps and bandwidth limit. Open circuits and
// streams are kept; the new values apply from the next circuit, handshake,
// stream or cell.
func (r *Relay) SetLimits(l Limits) {
	o := r.opts
	o.setLimits(l)
	o = o.withDefaults()
	r.mu.Lock()
	r.opts.setLimits(o.Limits())
	r.mu.Unlock()
	r.limiter.SetLimit(rate.Limit(o.HandshakesPerSecond))
	r.limiter.SetBurst(o.HandshakeBurst)
	r.setBandwidth(o.BandwidthRate, o.BandwidthBurst)
}

// Limits returns the relay's current caps and bandwidth limit.
func (r *Relay) Limits() Limits {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts.Limits()
}

func (r *Relay) setBandwidth(rateBytes, burst int64) {
	if rateBytes <= 0 {
		r.bw.Store(nil)
		return
	}
	if burst <= 0 {
		burst = rateBytes
	}
	burst = max(burst, batchCells*CellSize)
	r.bw.Store(rate.NewLimiter(rate.Limit(rateBytes), int(burst)))
}

// throttle waits until the bandwidth limit lets n more bytes go out.
func (r *Relay) throttle(ctx context.Context, n int) error {
	l := r.bw.Load()
	if l == nil {
		return nil
	}
	if err := l.WaitN(ctx, n); err != nil {
		return fmt.Errorf("bandwidth limit: %w", err)
	}
	return nil
}

// OnionKey returns the relay's current onion key, signed by its identity.
func (r *Relay) OnionKey() OnionKey { return r.keys.current() }

// RotateOnionKey makes a new onion key; the previous one is still accepted
// for the grace period.
func (r *Relay) RotateOnionKey() error { return r.keys.rotate(time.Now()) }

// Hop describes this relay for a client's path.
func (r *Relay) Hop() Hop {
	return Hop{ID: r.host.ID(), Addrs: r.host.Addrs(), OnionKey: r.OnionKey().Public}
}

// RelayStats are a relay's counters. They say how much, never whom.
type RelayStats struct {
	Circuits      int    // open now
	CircuitsTotal uint64 // accepted since start
	Bytes         uint64 // cell bytes handled
	Drops         uint64 // DROP cells addressed to this relay
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	n := len(r.circuits)
	r.mu.Unlock()
	return RelayStats{Circuits: n, CircuitsTotal: r.total.Load(), Bytes: r.forwarded.Load(), Drops: r.drops.Load()}
}

// Close stops serving, tears down every circuit and waits for them.
func (r *Relay) Close() error {
	r.host.RemoveStreamHandler(ProtocolID)
	r.stopFunc()
	r.mu.Lock()
	r.closed = true
	circs := make([]*relayCirc, 0, len(r.circuits))
	for rc := range r.circuits {
		circs = append(circs, rc)
	}
	for s := range r.pending {
		reset(s)
	}
	r.mu.Unlock()
	for _, rc := range circs {
		rc.close(DestroyFinished, errRelayClosed)
	}
	r.wg.Wait()
	return nil
}

var errRelayClosed = errors.New("relay closed")

// admit takes a new link stream from prev within the relay's caps, then
// asks AdmitPeer (if set) about prev. When it reports true the stream is
// pending and counted; settle ends that.
func (r *Relay) admit(s network.Stream, prev peer.ID) (DestroyReason, bool) {
	if reason, ok := r.reserve(s, prev); !ok {
		return reason, false
	}
	if r.opts.AdmitPeer == nil {
		return DestroyNone, true
	}
	ctx, cancel := context.WithTimeout(r.stop, r.opts.PendingTimeout)
	err := r.opts.AdmitPeer(ctx, prev)
	cancel()
	if err != nil {
		r.log.WithError(err).Debug("previous hop not admitted")
		r.settle(s, prev, nil)
		r.wg.Done()
		return DestroyNotAdmitted, false
	}
	return DestroyNone, true
}

// reserve counts a new link stream against the caps.
func (r *Relay) reserve(s network.Stream, prev peer.ID) (DestroyReason, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return DestroyFinished, false
	case len(r.circuits)+len(r.pending) >= r.opts.MaxCircuits, r.perPeer[prev] >= r.opts.MaxCircuitsPerPeer,
		len(r.pending) >= r.opts.MaxPending, r.pendPeer[prev] >= r.opts.MaxPendingPerPeer:
		return DestroyResource, false
	}
	r.pending[s] = prev
	r.pendPeer[prev]++
	r.perPeer[prev]++
	r.wg.Add(1)
	return DestroyNone, true
}

// maxPeerLimiters bounds the per-peer handshake buckets kept; beyond it
// the full (idle) ones are forgotten.
const maxPeerLimiters = 4096

// allowHandshake takes a token from prev's handshake bucket and then from
// the relay's: a peer that spends its own budget leaves the others theirs.
func (r *Relay) allowHandshake(prev peer.ID) bool {
	now := time.Now()
	r.mu.Lock()
	l := r.peerHS[prev]
	if l == nil {
		if len(r.peerHS) >= maxPeerLimiters {
			for id, pl := range r.peerHS {
				if pl.TokensAt(now) >= float64(pl.Burst()) {
					delete(r.peerHS, id)
				}
			}
			if len(r.peerHS) >= maxPeerLimiters {
				// All busy (many peer IDs): start afresh rather than
				// grow; the global budget still holds.
				clear(r.peerHS)
			}
		}
		l = rate.NewLimiter(rate.Limit(r.opts.HandshakesPerPeerPerSecond), r.opts.HandshakePeerBurst)
		r.peerHS[prev] = l
	}
	r.mu.Unlock()
	return l.AllowN(now, 1) && r.limiter.AllowN(now, 1)
}

// settle ends a link's handshake phase: it becomes the circuit rc, or, when
// rc is nil, is dropped. It reports false if the relay is closing.
func (r *Relay) settle(s network.Stream, prev peer.ID, rc *relayCirc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, s)
	if r.pendPeer[prev]--; r.pendPeer[prev] <= 0 {
		delete(r.pendPeer, prev)
	}
	if rc == nil || r.closed {
		if r.perPeer[prev]--; r.perPeer[prev] <= 0 {
			delete(r.perPeer, prev)
		}
		return false
	}
	r.circuits[rc] = struct{}{}
	return true
}

// reset aborts a link stream. The deadline comes first: a reset alone does
// not wake a write that waits for room in the connection's send queue, and
// such a write would hold its circuit, and the relay's Close, forever.
func reset(s network.Stream) {
	_ = s.SetDeadline(time.Now())
	_ = s.Reset()
}

func refuse(s network.Stream, reason DestroyReason) {
	cell := getCell()
	clear(*cell)
	(*cell)[0] = cmdDestroy
	(*cell)[1] = byte(reason)
	_ = s.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := s.Write(*cell)
	putCell(cell)
	// A reset would overtake the DESTROY at the peer, so close gracefully
	// when the write went through.
	if err != nil || s.Close() != nil {
		reset(s)
	}
}

// handle serves one inbound link stream: a circuit's CREATE and then its
// forward cells.
func (r *Relay) handle(s network.Stream) {
	prev := s.Conn().RemotePeer()
	if reason, ok := r.admit(s, prev); !ok {
		refuse(s, reason)
		return
	}
	defer r.wg.Done()
	rc, reason := r.accept(s, prev)
	if !r.settle(s, prev, rc) {
		if rc != nil {
			rc.cancel()
			reason = DestroyFinished
		}
		if reason != DestroyNone {
			refuse(s, reason)
		} else {
			reset(s)
		}
		return
	}
	r.total.Add(1)
	rc.forwardLoop()
}

// accept runs the relay's side of the handshake on a new link.
func (r *Relay) accept(s network.Stream, prev peer.ID) (*relayCirc, DestroyReason) {
	// The CREATE must come within the pending phase; only then is a
	// handshake token spent, so that opening and resetting streams costs
	// the relay's budget nothing.
	_ = s.SetDeadline(time.Now().Add(r.opts.PendingTimeout))
	cell, err := readCell(s)
	if err != nil {
		return nil, DestroyNone
	}
	defer putCell(cell)
	if (*cell)[0] != cmdCreate {
		return nil, DestroyProtocol
	}
	if !r.allowHandshake(prev) {
		return nil, DestroyResource
	}
	_ = s.SetDeadline(time.Now().Add(r.opts.HandshakeTimeout))
	hs, token, err := getCreate(*cell)
	if err == nil && r.opts.AdmitCircuit != nil {
		if reason := r.admitCircuit(prev, token); reason != DestroyNone {
			return nil, reason
		}
	}
	now := time.Now()
	var reply []byte
	var keys hopKeys
	if err == nil {
		reply, keys, err = serverHandshake(r.host.ID(), hs, func(b []byte) *ecdhKey { return r.keys.lookup(b, now) }, r.replay, now)
	}
	if err != nil {
		r.log.WithError(err).Debug("handshake refused")
		return nil, DestroyHandshake
	}
	l, err := newLayer(keys)
	if err != nil {
		return nil, DestroyInternal
	}
	putHandshake(*cell, cmdCreated, reply)
	if _, err := s.Write(*cell); err != nil {
		return nil, DestroyNone
	}
	_ = s.SetDeadline(time.Time{})

	rc := &relayCirc{r: r, prev: s, prevPeer: prev, l: l, binding: circuitBinding(keys), done: make(chan struct{})}
	rc.ctx, rc.cancel = context.WithCancel(context.Background())
	return rc, DestroyNone
}

// relayCirc is one circuit through this relay.
type relayCirc struct {
	r        *Relay
	prev     network.Stream
	prevPeer peer.ID
	l        *layer
	binding  [32]byte                  // for ESTABLISH_INTRO (join.go)
	peer     atomic.Pointer[relayCirc] // the circuit this one is joined to

	pmu sync.Mutex // writes towards the client and the backward crypto
	nmu sync.Mutex // writes towards the next hop

	// next is set once, by the forward loop when it extends; that loop
	// reads it freely, others under emu (never under nmu, which a blocked
	// write may hold).
	emu  sync.Mutex
	next network.Stream
	edge *edge // exit streams, made on the first stream message

	// early counts the RELAY_EARLY cells from the previous hop; drops
	// limits the DROP cells for this hop. The forward loop alone uses them.
	early    int
	drops    *rate.Limiter
	resolves atomic.Int32     // RESOLVEs in flight (resolve.go)
	rec      recordRelayState // records.go

	ctx       context.Context // canceled when the circuit closes
	cancel    context.CancelFunc
	closeOnce sync.Once
	done      chan struct{}
}

// sendRelay originates backward cells from this hop, in one link write; it
// makes relayCirc the exit edge's sender.
func (rc *relayCirc) sendRelay(cmd byte, stream uint16, data []byte) error {
	bp := getBatch()
	defer putBatch(bp)
	buf := *bp
	n := encodeCells(buf, cmd, stream, data)
	if err := rc.r.throttle(rc.ctx, n*CellSize); err != nil {
		return fmt.Errorf("%w: %w", ErrCircuitClosed, err)
	}
	rc.pmu.Lock()
	defer rc.pmu.Unlock()
	select {
	case <-rc.done:
		return ErrCircuitClosed
	default:
	}
	for c := 0; c < n; c++ {
		body := buf[c*CellSize+1 : (c+1)*CellSize]
		rc.l.bwd.seal(body)
	}
	if _, err := rc.prev.Write(buf[:n*CellSize]); err != nil {
		return fmt.Errorf("write cell: %w: %w", ErrCircuitClosed, err)
	}
	rc.r.forwarded.Add(uint64(n * CellSize))
	return nil
}

// forwardLoop reads cells from the previous hop, handles those meant for
// this hop and passes the others on, a batch per write.
func (rc *relayCirc) forwardLoop() {
	for {
		bp, n, err := readBatch(rc.prev)
		if err != nil {
			rc.close(DestroyNone, err)
			return
		}
		rc.r.forwarded.Add(uint64(n))
		buf := *bp
		w := 0 // cells to pass on are compacted to buf[:w]
		for off := 0; off < n; off += CellSize {
			c := buf[off : off+CellSize]
			pass, reason, err := rc.forward(c)
			if err != nil {
				putBatch(bp)
				rc.close(reason, err)
				return
			}
			if pass {
				if w != off {
					copy(buf[w:w+CellSize], c)
				}
				w += CellSize
			}
		}
		if w > 0 && rc.r.tap != nil {
			for off := 0; off < w; off += CellSize {
				rc.r.tap(true, buf[off:off+CellSize])
			}
		}
		if w > 0 {
			if p := rc.peer.Load(); rc.next == nil && p != nil {
				err := p.carry(buf[:w])
				putBatch(bp)
				if err != nil {
					rc.close(DestroyConnect, fmt.Errorf("carry to joined circuit: %w", err))
					return
				}
				continue
			}
			if rc.next == nil {
				putBatch(bp)
				rc.close(DestroyIntegrity, ErrIntegrity)
				return
			}
			err = rc.r.throttle(rc.ctx, w)
			if err == nil {
				rc.nmu.Lock()
				_, err = rc.next.Write(buf[:w])
				rc.nmu.Unlock()
			}
			if err != nil {
				putBatch(bp)
				rc.close(DestroyLinkLost, fmt.Errorf("write to next hop: %w", err))
				return
			}
		}
		putBatch(bp)
	}
}

// forward removes this hop's layer from a cell from the previous hop and
// handles it if it is meant for this hop; pass says it goes on.
func (rc *relayCirc) forward(c []byte) (pass bool, _ DestroyReason, _ error) {
	switch c[0] {
	case cmdRelay:
	case cmdRelayEarly:
		if rc.early++; rc.early > maxEarlyCells {
			return false, DestroyProtocol, fmt.Errorf("relay early cell %d, beyond %d hops: %w", rc.early, MaxHops, ErrPath)
		}
	case cmdDestroy:
		return false, DestroyReason(c[1]), fmt.Errorf("destroyed by previous hop: %w", ErrCircuitClosed)
	default:
		return false, DestroyProtocol, fmt.Errorf("link cell %d on a built circuit: %w", c[0], ErrMalformed)
	}
	body := c[1:]
	rc.l.fwd.open(body)
	if rc.r.peek != nil {
		rc.r.peek(body, rc.l.fwd.want[:])
	}
	if !rc.l.fwd.recognize(body) {
		if rc.next == nil && rc.peer.Load() == nil {
			return false, DestroyIntegrity, ErrIntegrity
		}
		return true, DestroyNone, nil
	}
	m, err := decodeRelay(body)
	if err != nil {
		return false, DestroyProtocol, err
	}
	if m.cmd == relayExtend && c[0] != cmdRelayEarly {
		return false, DestroyProtocol, fmt.Errorf("extend in a relay cell, not relay early: %w", ErrMalformed)
	}
	reason, err := rc.local(m)
	return false, reason, err
}

// local handles a relay message meant for this hop.
func (rc *relayCirc) local(m relayMsg) (DestroyReason, error) {
	if rc.peer.Load() != nil && m.cmd != relayDrop {
		return DestroyProtocol, fmt.Errorf("relay command %d at the relay of a joined circuit: %w", m.cmd, ErrMalformed)
	}
	switch m.cmd {
	case relayDrop:
		rc.r.drops.Add(1)
		if rc.drops == nil {
			rc.drops = rate.NewLimiter(dropRate, dropBurst)
		}
		if !rc.drops.Allow() {
			return DestroyProtocol, fmt.Errorf("drop cells beyond %d/s: %w", dropRate, ErrMalformed)
		}
		return DestroyNone, nil
	case relayExtend:
		ext, err := decodeExtend(m.data)
		if err != nil {
			return DestroyProtocol, err
		}
		return rc.extend(ext)
	case relayBegin:
		b, err := decodeBegin(m.data)
		if err != nil {
			return DestroyProtocol, err
		}
		return rc.begin(m.stream, b)
	case relayResolve:
		return rc.resolve(m.stream, m.data)
	case relayData, relayEnd, relayFin, relaySendme, relayConnected:
		if err := rc.exitEdge().handle(m); err != nil {
			return DestroyProtocol, err
		}
		return DestroyNone, nil
	default:
		if isJoinCmd(m.cmd) {
			return rc.join(m)
		}
		if isRecordCmd(m.cmd) {
			return rc.record(m)
		}
		return DestroyProtocol, fmt.Errorf("relay command %d at a relay: %w", m.cmd, ErrMalformed)
	}
}

func (rc *relayCirc) exitEdge() *edge {
	rc.emu.Lock()
	defer rc.emu.Unlock()
	if rc.edge == nil {
		rc.edge = newEdge(rc, rc.r.Limits().MaxStreamsPerCircuit, rc.r.buffered)
	}
	return rc.edge
}

func (rc *relayCirc) extend(ext extendMsg) (DestroyReason, error) {
	r := rc.r
	if rc.next != nil {
		return DestroyProtocol, fmt.Errorf("extend of an extended circuit: %w", ErrMalformed)
	}
	if rc.edge != nil {
		return DestroyProtocol, fmt.Errorf("extend of a circuit with streams: %w", ErrMalformed)
	}
	if ext.peer == r.host.ID() || ext.peer == rc.prevPeer {
		return DestroyProtocol, fmt.Errorf("extend back to this or the previous hop: %w", ErrPath)
	}
	ctx, cancel := context.WithTimeout(rc.ctx, r.opts.ExtendTimeout)
	defer cancel()
	ns, err := rc.dialNext(ctx, ext)
	if err != nil {
		rc.log().WithError(err).Debug("extend: open link failed")
		return DestroyConnect, fmt.Errorf("extend: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = ns.SetDeadline(dl)
	}
	// The circuit closing (the relay shutting down, the previous hop
	// gone) ends the wait for CREATED at once, not at ExtendTimeout.
	stop := context.AfterFunc(ctx, func() { reset(ns) })
	defer stop()
	cell := getCell()
	defer putCell(cell)
	putHandshake(*cell, cmdCreate, ext.handshake)
	if _, err := ns.Write(*cell); err != nil {
		reset(ns)
		return DestroyConnect, fmt.Errorf("extend: send create: %w", err)
	}
	reply, err := readCell(ns)
	if err != nil {
		reset(ns)
		return DestroyConnect, fmt.Errorf("extend: read created: %w", err)
	}
	defer putCell(reply)
	switch (*reply)[0] {
	case cmdCreated:
	case cmdDestroy:
		reset(ns)
		return DestroyReason((*reply)[1]), fmt.Errorf("extend: next hop refused: %w", &DestroyedError{Reason: DestroyReason((*reply)[1])})
	default:
		reset(ns)
		return DestroyConnect, fmt.Errorf("extend: cell %d instead of created: %w", (*reply)[0], ErrMalformed)
	}
	hs, err := getHandshake(*reply)
	if err != nil {
		reset(ns)
		return DestroyConnect, fmt.Errorf("extend: %w", err)
	}
	_ = ns.SetDeadline(time.Time{})
	select {
	case <-rc.done:
		reset(ns)
		return DestroyNone, ErrCircuitClosed
	default:
	}
	rc.emu.Lock()
	rc.next = ns
	rc.emu.Unlock()
	if err := rc.sendRelay(relayExtended, 0, hs); err != nil {
		return DestroyNone, err
	}
	r.wg.Add(1)
	go rc.backwardLoop(ns)
	return DestroyNone, nil
}

// ErrNotRelay reports an EXTEND to a peer the relay has no verified
// descriptor for, or whose addresses it may not dial.
var ErrNotRelay = errors.New("not a known relay at a dialable address")

// dialNext opens the link to the next hop: only to a relay ResolveHop
// vouches for (or, without one, the EXTEND's addresses), only at addresses
// DialableAddr allows. A refusal (ErrNotRelay: no verified descriptor, no
// dialable address), and without ResolveHop every failure, is answered no
// sooner than ExtendFailureDelay after the EXTEND came, so that how soon it
// failed (a closed port, an open one, an unknown peer) does not show. A
// failed dial to a verified relay's own published addresses is answered at
// once: whether a relay is up is public (anyone may dial those addresses),
// and the client must learn it soon to build around a dead relay.
func (rc *relayCirc) dialNext(ctx context.Context, ext extendMsg) (network.Stream, error) {
	r := rc.r
	start := time.Now()
	ns, err := func() (network.Stream, error) {
		addrs := ext.addrs
		if r.opts.ResolveHop != nil {
			var err error
			if addrs, err = r.opts.ResolveHop(ctx, ext.peer); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotRelay, err)
			}
		}
		var ok []ma.Multiaddr
		for _, a := range addrs {
			if DialableAddr(a, r.opts.AllowPrivateAddrs) {
				ok = append(ok, a)
			}
		}
		if len(ok) == 0 && r.host.Network().Connectedness(ext.peer) != network.Connected {
			return nil, fmt.Errorf("no dialable address: %w", ErrNotRelay)
		}
		r.host.Peerstore().AddAddrs(ext.peer, ok, peerstore.TempAddrTTL)
		return r.host.NewStream(ctx, ext.peer, ProtocolID)
	}()
	if err != nil && (r.opts.ResolveHop == nil || errors.Is(err, ErrNotRelay)) {
		t := time.NewTimer(time.Until(start.Add(r.opts.ExtendFailureDelay)))
		defer t.Stop()
		select {
		case <-t.C:
		case <-rc.ctx.Done():
		}
	}
	return ns, err
}

func (rc *relayCirc) log() logrus.FieldLogger { return rc.r.log }

// backwardLoop adds this hop's layer to cells from the next hop and passes
// them towards the client, a batch per write.
func (rc *relayCirc) backwardLoop(next network.Stream) {
	defer rc.r.wg.Done()
	for {
		bp, n, err := readBatch(next)
		if err != nil {
			rc.close(DestroyLinkLost, fmt.Errorf("read from next hop: %w", err))
			return
		}
		buf := *bp
		end := n
		var reason DestroyReason
		var cerr error
		for off := 0; off < n; off += CellSize {
			switch buf[off] {
			case cmdRelay:
				continue
			case cmdDestroy:
				reason, cerr = DestroyReason(buf[off+1]), fmt.Errorf("destroyed by next hop: %w", ErrCircuitClosed)
			default:
				reason, cerr = DestroyProtocol, fmt.Errorf("link cell %d from next hop: %w", buf[off], ErrMalformed)
			}
			end = off
			break
		}
		if end > 0 {
			rc.r.forwarded.Add(uint64(end))
			if err := rc.r.throttle(rc.ctx, end); err != nil {
				putBatch(bp)
				rc.close(DestroyNone, err)
				return
			}
			rc.pmu.Lock()
			for off := 0; off < end; off += CellSize {
				rc.l.bwd.wrap(buf[off+1 : off+CellSize])
				if rc.r.tap != nil {
					rc.r.tap(false, buf[off:off+CellSize])
				}
			}
			_, err = rc.prev.Write(buf[:end])
			rc.pmu.Unlock()
			if err != nil && cerr == nil {
				reason, cerr = DestroyNone, fmt.Errorf("write to previous hop: %w", err)
			}
		}
		putBatch(bp)
		if cerr != nil {
			rc.close(reason, cerr)
			return
		}
	}
}

// begin serves a BEGIN at the exit.
func (rc *relayCirc) begin(id uint16, b beginMsg) (DestroyReason, error) {
	r := rc.r
	if rc.next != nil {
		return DestroyProtocol, fmt.Errorf("begin at a middle hop: %w", ErrMalformed)
	}
	e := rc.exitEdge()
	s, err := e.acceptStream(id, streamAddr{host: b.host, port: b.port})
	if err != nil {
		if errors.Is(err, errStreamCap) {
			return DestroyNone, rc.sendRelay(relayEnd, id, []byte{byte(endreason.ReasonCircuitFull)})
		}
		return DestroyProtocol, err
	}
	if r.opts.Exit == nil {
		_ = s.closeWith(endreason.ReasonNotExit)
		return DestroyNone, nil
	}
	if !r.exitConns.take(1) {
		_ = s.closeWith(endreason.ReasonMisc)
		return DestroyNone, nil
	}
	r.wg.Add(1)
	go rc.serveExit(s, b)
	return DestroyNone, nil
}

func (rc *relayCirc) serveExit(s *Stream, b beginMsg) {
	r := rc.r
	defer r.wg.Done()
	defer r.exitConns.give(1)
	ctx, cancel := context.WithTimeout(rc.ctx, r.opts.ConnectTimeout)
	conn, err := r.opts.Exit.DialExit(ctx, b.host, b.port)
	cancel()
	if err != nil {
		_ = s.closeWith(endreason.ReasonOf(err))
		return
	}
	capSendBuffer(conn, r.opts.ExitSendBuffer)
	bridge(rc.ctx, &r.wg, rc, s, conn)
}

func (rc *relayCirc) close(reason DestroyReason, err error) {
	rc.closeOnce.Do(func() {
		close(rc.done)
		rc.cancel()
		r := rc.r
		rc.emu.Lock()
		next := rc.next
		rc.emu.Unlock()
		rc.closeLink(rc.prev, &rc.pmu, reason)
		if next != nil {
			rc.closeLink(next, &rc.nmu, reason)
		}
		rc.emu.Lock()
		e := rc.edge
		rc.emu.Unlock()
		if e != nil {
			e.kill(fmt.Errorf("%w: %w", ErrCircuitClosed, err))
			e.wait()
		}
		r.mu.Lock()
		delete(r.circuits, rc)
		if r.perPeer[rc.prevPeer]--; r.perPeer[rc.prevPeer] <= 0 {
			delete(r.perPeer, rc.prevPeer)
		}
		r.mu.Unlock()
		r.log.WithError(err).Debug("circuit closed")
	})
	rc.leave(reason, err)
}

// closeLink ends one of the circuit's links, with a DESTROY when there is a
// reason to give. A link has one writer at a time, under its mutex: yamux
// wakes a single blocked writer when its stream dies, so a second one could
// sleep forever. The write deadline makes a writer blocked on a stalled
// peer give the mutex up.
func (rc *relayCirc) closeLink(s network.Stream, mu *sync.Mutex, reason DestroyReason) {
	if reason == DestroyNone {
		reset(s)
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(time.Second))
	mu.Lock()
	refuse(s, reason)
	mu.Unlock()
}

// halfCloser is a conn that can close its write side.
type halfCloser interface{ CloseWrite() error }

// splicePool holds the buffers of busy splices: a read from an exit
// connection fills a whole batch of cells, which leaves as one link write
// (one yamux frame of four TLS records; with a quarter of that, each write
// of four cells took two records, the second for the frame's last bytes).
var splicePool = sync.Pool{New: func() any { b := make([]byte, batchCells*MaxCellData); return &b }}

// spliceIdle is the buffer a splice holds while it waits for data; it takes
// a pooled large buffer only while data keeps coming, so an idle stream at
// an exit costs little.
const spliceIdle = 1024

// splice copies src to dst. On EOF it half-closes dst; on an error it
// closes both.
func splice(dst, src net.Conn) {
	var small [spliceIdle]byte
	var big *[]byte
	defer func() {
		if big != nil {
			splicePool.Put(big)
		}
	}()
	for {
		buf := small[:]
		if big != nil {
			buf = *big
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				abort(dst, src)
				return
			}
		}
		switch {
		case big == nil && n == len(buf):
			big = splicePool.Get().(*[]byte) // busy: read in large pieces
		case big != nil && n < len(buf)/4:
			splicePool.Put(big) // quiet again
			big = nil
		}
		if errors.Is(err, io.EOF) {
			if hc, ok := dst.(halfCloser); ok {
				_ = hc.CloseWrite()
			} else {
				_ = dst.Close()
			}
			finishIfDone(dst, src)
			return
		}
		if err != nil {
			abort(dst, src)
			return
		}
	}
}

// abort closes both sides; a stream is ended with ReasonReset.
func abort(a, b net.Conn) {
	for _, c := range []net.Conn{a, b} {
		if s, ok := c.(*Stream); ok {
			_ = s.closeWith(endreason.ReasonReset)
		} else {
			_ = c.Close()
		}
	}
}

// finishIfDone closes the TCP side once the stream has ended both ways.
func finishIfDone(a, b net.Conn) {
	var s *Stream
	var other net.Conn
	if x, ok := a.(*Stream); ok {
		s, other = x, b
	} else if x, ok := b.(*Stream); ok {
		s, other = x, a
	}
	if s == nil {
		return
	}
	s.mu.Lock()
	both := s.ended || (s.wClosed && s.rEOF)
	s.mu.Unlock()
	if both {
		_ = other.Close()
		_ = s.Close()
	}
}

// exitDrainTimeout is how long an exit connection may take to accept data
// queued for it after its stream ended.
const exitDrainTimeout = 10 * time.Second

// capSendBuffer sets a conn's kernel send buffer, when it has one: data a
// destination does not read waits there, outside every window.
func capSendBuffer(c net.Conn, n int) {
	type writeBufferer interface{ SetWriteBuffer(int) error }
	if wb, ok := c.(writeBufferer); ok {
		_ = wb.SetWriteBuffer(n)
	}
}
