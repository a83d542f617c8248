package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pikcio/pikcio/internal/earlydata"
	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/sirupsen/logrus"
)

// Hop is a relay a circuit goes through: its identity, where to reach it,
// and its onion key, which the caller has checked is bound to ID (by
// OnionKey.Verify, or by a signed descriptor).
type Hop struct {
	ID       peer.ID
	Addrs    []ma.Multiaddr
	OnionKey [32]byte
}

// Client builds circuits from a libp2p host.
type Client struct {
	host host.Host
	opts ClientOptions
	log  logrus.FieldLogger

	mu       sync.Mutex
	circuits map[*Circuit]struct{}
	closed   bool
}

// NewClient returns a client that builds circuits from h.
func NewClient(h host.Host, opts ClientOptions) *Client {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultClientOptions().HandshakeTimeout
	}
	return &Client{
		host:     h,
		opts:     opts,
		log:      logrus.WithField("component", "circuit"),
		circuits: make(map[*Circuit]struct{}),
	}
}

// Close tears down every circuit the client built and waits for them.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	circs := make([]*Circuit, 0, len(c.circuits))
	for ci := range c.circuits {
		circs = append(circs, ci)
	}
	c.mu.Unlock()
	for _, ci := range circs {
		_ = ci.Close()
	}
	return nil
}

// Circuits returns the circuits that are open now.
func (c *Client) Circuits() []*Circuit {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Circuit, 0, len(c.circuits))
	for ci := range c.circuits {
		out = append(out, ci)
	}
	return out
}

// BuildError says which hop of a build failed.
type BuildError struct {
	Hop  int // 0 is the first hop
	Peer peer.ID
	Err  error
	// Reported: the failure is what hop Hop-1 said or did, not what the
	// client saw of hop Hop: hop Hop-1 refused the EXTEND to it (with a
	// reason the client cannot check: every relay's refusal takes the
	// same time), answered it with garbage, or never answered. A
	// malicious relay can say that of any next hop, to steer clients
	// away from it, so its word alone must not keep that relay out long.
	Reported bool
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("build circuit: hop %d (%s): %v", e.Hop+1, e.Peer.ShortString(), e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// ReportedByPreviousHop reports e.Reported, for a consumer that reads it
// through wrapping errors.
func (e *BuildError) ReportedByPreviousHop() bool { return e.Reported }

// ErrPath reports a path the client refuses to build.
var ErrPath = errors.New("invalid path")

// Build makes a circuit through path, one hop at a time: a handshake with the
// first hop, then an EXTEND through the circuit for each next one.
func (c *Client) Build(ctx context.Context, path []Hop) (*Circuit, error) {
	if len(path) == 0 || len(path) > MaxHops {
		return nil, fmt.Errorf("%d hops: %w", len(path), ErrPath)
	}
	seen := make(map[peer.ID]bool, len(path))
	for _, h := range path {
		if seen[h.ID] || h.ID == c.host.ID() {
			return nil, fmt.Errorf("relay %s twice or self: %w", h.ID.ShortString(), ErrPath)
		}
		seen[h.ID] = true
	}
	return c.buildPath(ctx, path)
}

// buildPath builds a circuit through a path already checked (tests make
// paths Build refuses, to see what relays do with them).
func (c *Client) buildPath(ctx context.Context, path []Hop) (*Circuit, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.HandshakeTimeout*time.Duration(len(path)))
		defer cancel()
	}
	first := path[0]
	if len(first.Addrs) > 0 {
		c.host.Peerstore().AddAddrs(first.ID, first.Addrs, peerstore.TempAddrTTL)
	}
	s, err := c.host.NewStream(ctx, first.ID, ProtocolID)
	if err != nil {
		return nil, &BuildError{Hop: 0, Peer: first.ID, Err: fmt.Errorf("open link: %w", err)}
	}
	ci := &Circuit{
		client:  c,
		link:    s,
		path:    append([]Hop(nil), path...),
		created: time.Now(),
		done:    make(chan struct{}),
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { reset(s) })
	err = ci.build(ctx)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		reset(s)
		return nil, err
	}
	_ = s.SetDeadline(time.Time{})
	// The edge is set before the circuit is listed: Circuits' callers
	// read its Stats at once.
	ci.edge = newEdge(ci, 1<<16-1, nil)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		reset(s)
		ci.edge.kill(ErrCircuitClosed)
		ci.edge.wait()
		return nil, fmt.Errorf("build circuit: %w", ErrCircuitClosed)
	}
	c.circuits[ci] = struct{}{}
	c.mu.Unlock()
	ci.wg.Add(1)
	go ci.readLoop()
	return ci, nil
}

func (ci *Circuit) build(ctx context.Context) error {
	// First hop: CREATE on the link.
	h0 := ci.path[0]
	hs, err := newClientHandshake(h0.ID, h0.OnionKey, time.Now())
	if err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: err}
	}
	var token []byte
	if ci.client.opts.Token != nil {
		if token, err = ci.client.opts.Token(ctx, h0.ID); err != nil {
			return &BuildError{Hop: 0, Peer: h0.ID, Err: fmt.Errorf("admission token: %w", err)}
		}
	}
	cell := getCell()
	defer putCell(cell)
	if err := putCreate(*cell, hs.msg, token); err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: err}
	}
	sent := time.Now()
	if _, err := ci.link.Write(*cell); err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: fmt.Errorf("send create: %w", err)}
	}
	reply, err := readCell(ci.link)
	if err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: fmt.Errorf("read created: %w", err)}
	}
	defer putCell(reply)
	if (*reply)[0] == cmdDestroy {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: &DestroyedError{Reason: DestroyReason((*reply)[1])}}
	}
	if (*reply)[0] != cmdCreated {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: fmt.Errorf("cell %d instead of created: %w", (*reply)[0], ErrMalformed)}
	}
	body, err := getHandshake(*reply)
	if err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: err}
	}
	keys, err := hs.finish(body)
	if err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: err}
	}
	l, err := newLayer(keys)
	if err != nil {
		return &BuildError{Hop: 0, Peer: h0.ID, Err: err}
	}
	ci.layers = append(ci.layers, l)
	ci.binding = circuitBinding(keys)
	ci.rtt = time.Since(sent)

	// Further hops: EXTEND through the last hop so far.
	for i := 1; i < len(ci.path); i++ {
		sent := time.Now()
		err := ci.extend(i)
		ci.rtt = time.Since(sent)
		if le, ok := errors.AsType[*linkError](err); ok && !le.timeout() && ctx.Err() == nil {
			// The link to the first hop broke (closed or reset, not a
			// silent extension that ran into the build's deadline): that
			// is the first hop's failure, not hop i's.
			return &BuildError{Hop: 0, Peer: ci.path[0].ID, Err: err}
		}
		if de, ok := errors.AsType[*DestroyedError](err); ok && de.Reason == DestroyLinkLost && i >= 2 {
			// A relay before hop i lost its link to the next, a hop
			// already built: hop i-1 died while the EXTEND through it
			// waited (so says hop i-2).
			return &BuildError{Hop: i - 1, Peer: ci.path[i-1].ID, Err: err, Reported: true}
		}
		if err != nil {
			return &BuildError{Hop: i, Peer: ci.path[i].ID, Err: err, Reported: true}
		}
		if err := ctx.Err(); err != nil {
			return &BuildError{Hop: i, Peer: ci.path[i].ID, Err: err}
		}
	}
	return nil
}

func (ci *Circuit) extend(i int) error {
	h := ci.path[i]
	hs, err := newClientHandshake(h.ID, h.OnionKey, time.Now())
	if err != nil {
		return err
	}
	msg, err := extendMsg{peer: h.ID, addrs: h.Addrs, handshake: hs.msg}.encode()
	if err != nil {
		return err
	}
	if err := ci.sendCells(i-1, cmdRelayEarly, relayExtend, 0, msg); err != nil {
		return &linkError{fmt.Errorf("send extend: %w", err)}
	}
	for {
		cell, err := readCell(ci.link)
		if err != nil {
			return &linkError{fmt.Errorf("read extended: %w", err)}
		}
		from, m, err := ci.open(*cell)
		if err != nil {
			putCell(cell)
			return err
		}
		if m.cmd == relayDrop {
			putCell(cell)
			continue
		}
		if from != i-1 || m.cmd != relayExtended {
			putCell(cell)
			return fmt.Errorf("relay command %d from hop %d instead of extended: %w", m.cmd, from+1, ErrMalformed)
		}
		keys, err := hs.finish(m.data)
		putCell(cell)
		if err != nil {
			return err
		}
		l, err := newLayer(keys)
		if err != nil {
			return err
		}
		ci.layers = append(ci.layers, l)
		ci.binding = circuitBinding(keys)
		return nil
	}
}

// linkError is a failure of the link to the first hop during an EXTEND.
type linkError struct{ err error }

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// timeout reports whether the link only hit the build's deadline: then
// the extension went unanswered, which is the extended hop's failure.
func (e *linkError) timeout() bool {
	return errors.Is(e.err, os.ErrDeadlineExceeded) || errors.Is(e.err, context.DeadlineExceeded)
}

// Circuit is a built circuit, seen from the client.
type Circuit struct {
	client  *Client
	link    network.Stream
	path    []Hop
	layers  []*layer
	edge    *edge
	created time.Time
	rtt     time.Duration // of the build's last handshake; set before Build returns
	binding [32]byte      // of the last real hop; set before Build returns
	join    joinState     // intro, rendezvous and the virtual hop (join.go)
	recs    recordCalls   // records through the last hop (records.go)

	wmu   sync.Mutex // serializes encryption and writes towards the first hop
	early int        // RELAY_EARLY cells sent, under wmu
	rmu   sync.Mutex // guards backward crypto state (only the reader uses it after build)

	closeOnce sync.Once
	done      chan struct{}
	errMu     sync.Mutex
	err       error
	wg        sync.WaitGroup
}

// sendTo encrypts a relay message (DATA may span several cells) for hop i
// and writes it on the link in one write.
func (ci *Circuit) sendTo(i int, cmd byte, stream uint16, data []byte) error {
	return ci.sendCells(i, cmdRelay, cmd, stream, data)
}

// sendCells is sendTo with the link command of the cells: cmdRelay, or
// cmdRelayEarly for an EXTEND.
func (ci *Circuit) sendCells(i int, link, cmd byte, stream uint16, data []byte) error {
	bp := getBatch()
	defer putBatch(bp)
	buf := *bp
	n := encodeCells(buf, cmd, stream, data)
	ci.wmu.Lock()
	defer ci.wmu.Unlock()
	select {
	case <-ci.done:
		return ci.Err()
	default:
	}
	if i == lastLayer {
		i = len(ci.layers) - 1
	}
	l := ci.layers[i]
	for c := 0; c < n; c++ {
		// As Tor's clients do, the first cells not for the first hop
		// go as RELAY_EARLY too, up to the relays' limit: every guard
		// then sees as many, whatever the circuit's length.
		buf[c*CellSize] = link
		if link == cmdRelay && i > 0 && ci.early < maxEarlyCells {
			buf[c*CellSize] = cmdRelayEarly
		}
		if buf[c*CellSize] == cmdRelayEarly {
			ci.early++
		}
		body := buf[c*CellSize+1 : (c+1)*CellSize]
		l.fwd.seal(body)
		for j := i - 1; j >= 0; j-- {
			ci.layers[j].fwd.wrap(body)
		}
	}
	if _, err := ci.link.Write(buf[:n*CellSize]); err != nil {
		return fmt.Errorf("write cell: %w: %w", ErrCircuitClosed, err)
	}
	return nil
}

// sendRelay sends to the last hop; it makes Circuit the edge's sender.
func (ci *Circuit) sendRelay(cmd byte, stream uint16, data []byte) error {
	return ci.sendTo(lastLayer, cmd, stream, data)
}

// lastLayer, as a hop index, is the circuit's last hop, virtual or not.
const lastLayer = -1

// open removes layers from a backward cell until one recognizes it.
func (ci *Circuit) open(cell []byte) (int, relayMsg, error) {
	switch cell[0] {
	case cmdRelay:
	case cmdDestroy:
		return -1, relayMsg{}, &DestroyedError{Reason: DestroyReason(cell[1])}
	default:
		return -1, relayMsg{}, fmt.Errorf("link cell %d on a built circuit: %w", cell[0], ErrMalformed)
	}
	body := cell[1:]
	ci.rmu.Lock()
	defer ci.rmu.Unlock()
	for i, l := range ci.layers {
		l.bwd.open(body)
		if l.bwd.recognize(body) {
			m, err := decodeRelay(body)
			return i, m, err
		}
	}
	return -1, relayMsg{}, ErrIntegrity
}

func (ci *Circuit) readLoop() {
	defer ci.wg.Done()
	for {
		bp, n, err := readBatch(ci.link)
		if err != nil {
			lost := ci.Err() == nil // not closed here, nor by a DESTROY
			ci.fail(fmt.Errorf("read from first hop: %w: %w", ErrCircuitClosed, err), DestroyNone)
			if lost && ci.client.opts.LinkLost != nil {
				ci.client.opts.LinkLost(ci.path[0].ID)
			}
			return
		}
		for off := 0; off < n; off += CellSize {
			if reason, err := ci.dispatch((*bp)[off : off+CellSize]); err != nil {
				putBatch(bp)
				ci.fail(err, reason)
				return
			}
		}
		putBatch(bp)
	}
}

// dispatch handles one backward cell.
func (ci *Circuit) dispatch(cell []byte) (DestroyReason, error) {
	from, m, err := ci.open(cell)
	if err != nil {
		var de *DestroyedError
		switch {
		case errors.As(err, &de):
			return DestroyNone, err
		case errors.Is(err, ErrIntegrity):
			return DestroyIntegrity, err
		default:
			return DestroyProtocol, err
		}
	}
	if m.cmd == relayDrop {
		return DestroyNone, nil
	}
	if isJoinCmd(m.cmd) {
		return ci.onJoin(from, m)
	}
	if isRecordCmd(m.cmd) {
		return ci.onRecord(from, m)
	}
	if from != ci.lastHop() {
		return DestroyProtocol, fmt.Errorf("relay command %d from hop %d: %w", m.cmd, from+1, ErrMalformed)
	}
	if m.cmd == relayBegin {
		return ci.onBegin(m)
	}
	if err := ci.edge.handle(m); err != nil {
		return DestroyProtocol, err
	}
	return DestroyNone, nil
}

// fail closes the circuit with err. A non-zero reason is sent to the first
// hop in a DESTROY.
func (ci *Circuit) fail(err error, reason DestroyReason) {
	ci.closeOnce.Do(func() {
		ci.errMu.Lock()
		ci.err = err
		ci.errMu.Unlock()
		close(ci.done)
		if reason != DestroyNone {
			// Tell the first hop, which passes the DESTROY on. The same
			// function serves the relays, and closes the link gracefully
			// so that the DESTROY is not overtaken by a reset.
			_ = ci.link.SetWriteDeadline(time.Now().Add(time.Second))
			ci.wmu.Lock()
			refuse(ci.link, reason)
			ci.wmu.Unlock()
		} else {
			reset(ci.link)
		}
		if ci.edge != nil {
			ci.edge.kill(err)
		}
		ci.client.mu.Lock()
		delete(ci.client.circuits, ci)
		ci.client.mu.Unlock()
		ci.client.log.WithError(err).Debug("circuit closed")
		if f := ci.client.opts.OnFailure; f != nil && reason != DestroyRequested {
			f(ci.Path(), err)
		}
	})
}

// PathBiasFailure reports whether err, from a circuit that failed after it
// was built, is the kind a tampering relay causes: a cell that failed its
// integrity check or broke the protocol, seen by the client or by a relay
// that destroyed the circuit for it. Closes, relay shutdowns and refusals
// for lack of resources are not.
func PathBiasFailure(err error) bool {
	if de, ok := errors.AsType[*DestroyedError](err); ok {
		return de.Reason == DestroyIntegrity || de.Reason == DestroyProtocol
	}
	return errors.Is(err, ErrIntegrity) || errors.Is(err, ErrMalformed)
}

// Close tears the circuit down and waits for its goroutines.
func (ci *Circuit) Close() error {
	ci.fail(fmt.Errorf("closed by client: %w", ErrCircuitClosed), DestroyRequested)
	ci.wg.Wait()
	ci.edge.wait()
	return nil
}

// Done is closed when the circuit is closed or has failed.
func (ci *Circuit) Done() <-chan struct{} { return ci.done }

// Err says why the circuit closed, or nil while it is open.
func (ci *Circuit) Err() error {
	ci.errMu.Lock()
	defer ci.errMu.Unlock()
	if ci.err == nil {
		select {
		case <-ci.done:
			return ErrCircuitClosed
		default:
		}
	}
	return ci.err
}

// Path returns the hops of the circuit, first hop first.
func (ci *Circuit) Path() []Hop { return append([]Hop(nil), ci.path...) }

// Created is when the circuit was built.
func (ci *Circuit) Created() time.Time { return ci.created }

// RTT is the round trip of the build's last handshake (CREATE, or the
// EXTEND to the last hop through all the others): about the circuit's
// round-trip time, or more when the last hop's link had to be set up.
func (ci *Circuit) RTT() time.Duration { return ci.rtt }

// ExitID names the circuit's last hop (its peer ID), for a pool that
// keeps circuits through different exits.
func (ci *Circuit) ExitID() string { return ci.path[len(ci.path)-1].ID.String() }

// GuardID names the circuit's first hop, for a pool that passes over
// circuits through a relay that another circuit found hung.
func (ci *Circuit) GuardID() string { return ci.path[0].ID.String() }

// RelayIDs names the circuit's hops after the first (middles, then the
// exit), for a pool whose spare circuits share no relay beyond the guard.
func (ci *Circuit) RelayIDs() []string {
	out := make([]string, 0, len(ci.path)-1)
	for _, h := range ci.path[1:] {
		out = append(out, h.ID.String())
	}
	return out
}

// CircuitStats are a circuit's counters.
type CircuitStats struct {
	BytesUp, BytesDown uint64 // stream payload
	Streams            int    // open now
	StreamsOpened      uint64 // in total
}

// Stats returns the circuit's counters.
func (ci *Circuit) Stats() CircuitStats {
	return CircuitStats{
		BytesUp:       ci.edge.up.Load(),
		BytesDown:     ci.edge.down.Load(),
		Streams:       ci.edge.numStreams(),
		StreamsOpened: ci.edge.opened.Load(),
	}
}

// OpenStream asks the exit to connect to host:port and returns the stream
// once it has. host is a name or an IP literal; names are resolved by the
// exit. Errors from the exit wrap exitnode's sentinels (ErrPolicy,
// ErrRefused, ...); a circuit failure wraps ErrCircuitClosed.
//
// When ctx is marked with earlydata.With, the stream is returned as soon as
// the BEGIN has left (optimistic data): what the caller writes follows the
// BEGIN at once and the exit sends it on when it has connected, saving a
// circuit round trip. A failed connect then shows as the error of the
// stream's first Read (and of later Writes), wrapping the same sentinels.
func (ci *Circuit) OpenStream(ctx context.Context, host string, port uint16) (net.Conn, error) {
	msg, err := beginMsg{host: host, port: port}.encode()
	if err != nil {
		return nil, fmt.Errorf("open stream: %w: %w", endreason.ErrMisc, err)
	}
	s, err := ci.edge.newStream(streamAddr{host: host, port: port})
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if err := ci.sendRelay(relayBegin, s.id, msg); err != nil {
		_ = s.closeWith(endreason.ReasonDone)
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if earlydata.Wanted(ctx) {
		return s, nil
	}
	if err := s.waitConnected(ctx); err != nil {
		_ = s.Close()
		if errors.Is(err, io.EOF) {
			err = ErrCircuitClosed
		}
		return nil, fmt.Errorf("open stream: %w", err)
	}
	return s, nil
}
