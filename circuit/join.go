package circuit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/service"
)

// Joining two circuits (issue 17; package service has the formats, the
// cryptography and the relay-side tables): the relay commands on stream 0
// by which a service registers at an intro point, a client introduces
// itself and both meet at a rendezvous relay, which then splices the two
// circuits. Each end adds a virtual hop keyed by the end-to-end handshake,
// and streams go to that hop. See "Joined circuits" in doc.go.
const (
	relayEstablishIntro        byte = 12 // service -> intro point
	relayIntroEstablished      byte = 13 // intro point -> service
	relayIntroduce1            byte = 14 // client -> intro point
	relayIntroduce2            byte = 15 // intro point -> service
	relayIntroduceAck          byte = 16 // intro point -> client: one status byte
	relayEstablishRendezvous   byte = 17 // client -> rendezvous relay: the cookie
	relayRendezvousEstablished byte = 18 // rendezvous relay -> client
	relayRendezvous1           byte = 19 // service -> rendezvous relay
	relayRendezvous2           byte = 20 // rendezvous relay -> client
)

func isJoinCmd(c byte) bool { return c >= relayEstablishIntro && c <= relayRendezvous2 }

// INTRODUCE_ACK statuses.
const (
	introAckOK          byte = 0
	introAckUnknown     byte = 1 // no service under that auth key here
	introAckRateLimited byte = 2 // the service's bucket at this intro point is empty
)

// Errors of joining, which callers branch on.
var (
	// ErrIntroUnknown: the intro point serves no service under the auth
	// key (the service moved or its circuit closed).
	ErrIntroUnknown = errors.New("introduction point does not serve that service")
	// ErrIntroRateLimited: the intro point refused for the service's rate.
	ErrIntroRateLimited = errors.New("introduction point rate-limits that service")
	// ErrNotJoined: a join step on a circuit in the wrong state.
	ErrNotJoined = errors.New("circuit is not in the state this join step needs")
)

// decodeIntroduceAck reads an INTRODUCE_ACK.
func decodeIntroduceAck(p []byte) error {
	if len(p) != 1 {
		return fmt.Errorf("introduce_ack of %d bytes: %w", len(p), ErrMalformed)
	}
	switch p[0] {
	case introAckOK:
		return nil
	case introAckUnknown:
		return ErrIntroUnknown
	case introAckRateLimited:
		return ErrIntroRateLimited
	default:
		return fmt.Errorf("introduce_ack status %d: %w", p[0], ErrMalformed)
	}
}

// bindingLabel is what the circuit binding of ESTABLISH_INTRO is an HMAC of.
var bindingLabel = []byte("pikcio-svc circuit binding")

// circuitBinding is a value both ends of a hop derive from its key
// material and no one else can: an ESTABLISH_INTRO signed over it is
// good on that circuit only.
func circuitBinding(k hopKeys) [32]byte {
	return [32]byte(hmacSHA256(k.f.auth[:], bindingLabel))
}

// virtualLabel makes the virtual hop's keys from the end-to-end seed.
var virtualLabel = []byte(protoID + ":virtual_hop")

// virtualLayer is the layer of the virtual hop both ends of a joined
// circuit add, from the seed of their end-to-end handshake (service.Keys).
// The client's forward direction is the service's backward one.
func virtualLayer(seed []byte, atService bool) (*layer, error) {
	if len(seed) < 32 {
		return nil, fmt.Errorf("virtual hop seed of %d bytes: %w", len(seed), ErrMalformed)
	}
	k, err := deriveKeys(hmacSHA256(virtualLabel, seed))
	if err != nil {
		return nil, err
	}
	if atService {
		k.f, k.b = k.b, k.f
	}
	return newLayer(k)
}

// ctlQueue bounds the join messages waiting for a reader on a circuit;
// beyond it an INTRODUCE2 is dropped (the client retries elsewhere).
const ctlQueue = 16

// serviceConnectTimeout bounds a service's dial of its local target.
const serviceConnectTimeout = 10 * time.Second

type ctlMsg struct {
	cmd  byte
	data []byte
}

// joinState is a client circuit's part in joining.
type joinState struct {
	once sync.Once
	ctl  chan ctlMsg

	mu      sync.Mutex
	finish  func(rendezvous2 []byte) ([]byte, error) // client: waits for RENDEZVOUS2
	dial    func(context.Context) (net.Conn, error)  // service: answers BEGIN
	ctx     context.Context                          // service: canceled when the circuit closes
	joined  chan error                               // client: the outcome of RENDEZVOUS2
	virtual atomic.Bool                              // the virtual hop is on
}

func (ci *Circuit) ctlq() chan ctlMsg {
	ci.join.once.Do(func() {
		ci.join.ctl = make(chan ctlMsg, ctlQueue)
		ci.join.joined = make(chan error, 1)
	})
	return ci.join.ctl
}

// Binding is the circuit binding of the last real hop (see ESTABLISH_INTRO
// in package service).
func (ci *Circuit) Binding() [32]byte { return ci.binding }

// lastHop is the index of the circuit's last layer, virtual or not.
func (ci *Circuit) lastHop() int {
	ci.rmu.Lock()
	defer ci.rmu.Unlock()
	return len(ci.layers) - 1
}

// onJoin handles a join message from a hop; the reader calls it.
func (ci *Circuit) onJoin(from int, m relayMsg) (DestroyReason, error) {
	if ci.join.virtual.Load() || from != ci.lastHop() {
		return DestroyProtocol, fmt.Errorf("relay command %d from hop %d: %w", m.cmd, from+1, ErrMalformed)
	}
	q := ci.ctlq()
	switch m.cmd {
	case relayRendezvous2:
		ci.join.mu.Lock()
		finish := ci.join.finish
		ci.join.finish = nil
		ci.join.mu.Unlock()
		if finish == nil {
			return DestroyProtocol, fmt.Errorf("rendezvous2 unasked: %w", ErrMalformed)
		}
		err := ci.joinAs(finish, m.data)
		ci.join.joined <- err
		if err != nil {
			return DestroyProtocol, err
		}
		return DestroyNone, nil
	case relayIntroEstablished, relayIntroduce2, relayIntroduceAck, relayRendezvousEstablished:
		select {
		case q <- ctlMsg{cmd: m.cmd, data: append([]byte(nil), m.data...)}:
		default:
			ci.client.log.Debug("join message dropped: queue full")
		}
		return DestroyNone, nil
	default:
		return DestroyProtocol, fmt.Errorf("relay command %d towards a client: %w", m.cmd, ErrMalformed)
	}
}

func (ci *Circuit) joinAs(finish func([]byte) ([]byte, error), rendezvous2 []byte) error {
	seed, err := finish(rendezvous2)
	if err != nil {
		return fmt.Errorf("rendezvous2: %w", err)
	}
	l, err := virtualLayer(seed, false)
	clear(seed)
	if err != nil {
		return err
	}
	ci.addLayer(l)
	return nil
}

func (ci *Circuit) addLayer(l *layer) {
	ci.wmu.Lock()
	ci.rmu.Lock()
	ci.layers = append(ci.layers, l)
	ci.rmu.Unlock()
	ci.wmu.Unlock()
	ci.join.virtual.Store(true)
}

// await waits for the next join message of command cmd from the last hop;
// others are dropped. One caller at a time.
func (ci *Circuit) await(ctx context.Context, cmd byte) ([]byte, error) {
	q := ci.ctlq()
	for {
		select {
		case m := <-q:
			if m.cmd == cmd {
				return m.data, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ci.done:
			return nil, ci.Err()
		}
	}
}

// request sends a join message to the last real hop and waits for the
// answer of command reply.
func (ci *Circuit) request(ctx context.Context, cmd byte, msg []byte, reply byte) ([]byte, error) {
	if ci.join.virtual.Load() {
		return nil, ErrNotJoined
	}
	ci.ctlq()
	if err := ci.sendTo(lastLayer, cmd, 0, msg); err != nil {
		return nil, err
	}
	return ci.await(ctx, reply)
}

// EstablishIntro registers the circuit's last hop as an introduction point
// with msg, an ESTABLISH_INTRO signed over Binding
// (service.IntroKeys.EstablishIntro), and waits for it to agree.
func (ci *Circuit) EstablishIntro(ctx context.Context, msg []byte) error {
	if _, err := ci.request(ctx, relayEstablishIntro, msg, relayIntroEstablished); err != nil {
		return fmt.Errorf("establish intro: %w", err)
	}
	return nil
}

// Introduction waits for the next INTRODUCE2 on an intro circuit.
func (ci *Circuit) Introduction(ctx context.Context) ([]byte, error) {
	m, err := ci.await(ctx, relayIntroduce2)
	if err != nil {
		return nil, fmt.Errorf("wait for introduce2: %w", err)
	}
	return m, nil
}

// Introduce sends an INTRODUCE1 to the last hop, an intro point, and
// returns its answer: nil, ErrIntroUnknown or ErrIntroRateLimited.
func (ci *Circuit) Introduce(ctx context.Context, msg []byte) error {
	ack, err := ci.request(ctx, relayIntroduce1, msg, relayIntroduceAck)
	if err == nil {
		err = decodeIntroduceAck(ack)
	}
	if err != nil {
		return fmt.Errorf("introduce: %w", err)
	}
	return nil
}

// EstablishRendezvous makes the last hop wait for a service under cookie;
// finish will get the RENDEZVOUS2 and return the seed of the virtual hop
// (service.ClientIntroduction.Finish). AwaitRendezvous waits for that.
func (ci *Circuit) EstablishRendezvous(ctx context.Context, cookie []byte, finish func(rendezvous2 []byte) (seed []byte, err error)) error {
	ci.ctlq()
	ci.join.mu.Lock()
	ci.join.finish = finish
	ci.join.mu.Unlock()
	if _, err := ci.request(ctx, relayEstablishRendezvous, cookie, relayRendezvousEstablished); err != nil {
		return fmt.Errorf("establish rendezvous: %w", err)
	}
	return nil
}

// AwaitRendezvous waits for the service to join the circuit; then streams
// (OpenStream) go to the service.
func (ci *Circuit) AwaitRendezvous(ctx context.Context) error {
	ci.ctlq()
	select {
	case err := <-ci.join.joined:
		return err
	case <-ctx.Done():
		return fmt.Errorf("wait for rendezvous: %w", ctx.Err())
	case <-ci.done:
		return fmt.Errorf("wait for rendezvous: %w", ci.Err())
	}
}

// Rendezvous is the service's side: it sends RENDEZVOUS1 to the last hop,
// the client's rendezvous relay, and adds the virtual hop keyed by seed.
// Streams the client opens are answered by dial; the service opens none.
func (ci *Circuit) Rendezvous(rendezvous1, seed []byte, dial func(context.Context) (net.Conn, error)) error {
	if ci.join.virtual.Load() {
		return ErrNotJoined
	}
	l, err := virtualLayer(seed, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ci.join.mu.Lock()
	ci.join.dial, ci.join.ctx = dial, ctx
	ci.join.mu.Unlock()
	ci.wg.Add(1)
	go func() {
		defer ci.wg.Done()
		<-ci.done
		cancel()
	}()
	// The virtual hop is in place before RENDEZVOUS1 leaves: the client's
	// BEGIN can follow the relay's splice at once, and a cell for a hop
	// the circuit does not have yet fails its integrity check.
	ci.wmu.Lock()
	last := len(ci.layers) - 1
	ci.wmu.Unlock()
	ci.addLayer(l)
	if err := ci.sendTo(last, relayRendezvous1, 0, rendezvous1); err != nil {
		return fmt.Errorf("send rendezvous1: %w", err)
	}
	testHookRendezvousSent()
	return nil
}

// testHookRendezvousSent runs when a service's RENDEZVOUS1 has left (a
// test delays the service there).
var testHookRendezvousSent = func() {}

// onBegin answers a BEGIN from the client at a service's joined circuit:
// the service dials its local target, never an exit.
func (ci *Circuit) onBegin(m relayMsg) (DestroyReason, error) {
	ci.join.mu.Lock()
	dial := ci.join.dial
	ci.join.mu.Unlock()
	if dial == nil || !ci.join.virtual.Load() {
		return DestroyProtocol, fmt.Errorf("begin towards a client: %w", ErrMalformed)
	}
	b, err := decodeBegin(m.data)
	if err != nil {
		return DestroyProtocol, err
	}
	s, err := ci.edge.acceptStream(m.stream, streamAddr{host: b.host, port: b.port})
	if errors.Is(err, errStreamCap) {
		return DestroyNone, ci.sendRelay(relayEnd, m.stream, []byte{byte(endreason.ReasonCircuitFull)})
	}
	if err != nil {
		return DestroyProtocol, err
	}
	ci.join.mu.Lock()
	jctx := ci.join.ctx
	ci.join.mu.Unlock()
	ci.wg.Add(1)
	go func() {
		defer ci.wg.Done()
		ctx, cancel := context.WithTimeout(jctx, serviceConnectTimeout)
		conn, err := dial(ctx)
		cancel()
		if err != nil {
			_ = s.closeWith(endreason.ReasonOf(err))
			return
		}
		bridge(jctx, &ci.wg, ci, s, conn)
	}()
	return DestroyNone, nil
}

// bridge carries a stream that has its connection: data that came with
// the BEGIN leaves for conn while CONNECTED travels back. conn closes with
// ctx, the circuit's.
func bridge(ctx context.Context, wg *sync.WaitGroup, out relaySender, s *Stream, conn net.Conn) {
	// A destination that does not read must not hold this goroutine (and
	// its owner's Close) once the stream or the circuit is gone: the
	// connection closes with the circuit, and gets exitDrainTimeout to take
	// what is queued for it after an END.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	s.setOnEnd(func() { _ = conn.SetWriteDeadline(time.Now().Add(exitDrainTimeout)) })
	select {
	case <-s.closed: // the client gave up while we connected
		_ = conn.Close()
		return
	default:
	}
	// Data that came with the BEGIN (optimistic data) leaves for the
	// destination while CONNECTED travels back.
	wg.Add(1)
	go func() {
		defer wg.Done()
		splice(conn, s)
	}()
	if err := out.sendRelay(relayConnected, s.id, nil); err != nil {
		_ = conn.Close()
		_ = s.closeWith(endreason.ReasonMisc)
		return
	}
	splice(s, conn)
}

// joinTables are what a relay keeps as intro point and rendezvous relay.
type joinTables struct {
	once  sync.Once
	intro *service.IntroTable[*relayCirc]
	rend  *service.RendezvousTable[*relayCirc]
}

func (r *Relay) tables() *joinTables {
	r.join.once.Do(func() {
		r.join.intro = service.NewIntroTable[*relayCirc](0)
		r.join.rend = service.NewRendezvousTable[*relayCirc](0, 0)
	})
	return &r.join
}

// JoinStats counts what a relay serves as intro point and rendezvous
// relay: how many, never whose.
type JoinStats struct {
	IntroCircuits int // services' intro circuits registered here
}

// JoinStats returns the relay's join counters.
func (r *Relay) JoinStats() JoinStats { return JoinStats{IntroCircuits: r.tables().intro.Len()} }

// join handles a join message at the last hop of a circuit.
func (rc *relayCirc) join(m relayMsg) (DestroyReason, error) {
	rc.emu.Lock()
	fresh := rc.next == nil && rc.edge == nil
	rc.emu.Unlock()
	if !fresh || rc.peer.Load() != nil {
		return DestroyProtocol, fmt.Errorf("relay command %d not at the last hop of an unused circuit: %w", m.cmd, ErrMalformed)
	}
	t := rc.r.tables()
	now := time.Now()
	switch m.cmd {
	case relayEstablishIntro:
		if _, err := t.intro.Establish(rc, m.data, rc.binding); err != nil {
			return joinRefusal(err), fmt.Errorf("establish intro: %w", err)
		}
		return DestroyNone, rc.sendRelay(relayIntroEstablished, 0, nil)
	case relayIntroduce1:
		status := introAckOK
		svc, err := t.intro.Route(m.data, now)
		switch {
		case errors.Is(err, service.ErrRateLimited):
			status = introAckRateLimited
		case errors.Is(err, service.ErrUnknownIntro):
			status = introAckUnknown
		case err != nil:
			return DestroyProtocol, fmt.Errorf("introduce1: %w", err)
		case svc == rc:
			return DestroyProtocol, fmt.Errorf("introduce1 on the service's own circuit: %w", ErrMalformed)
		default:
			// Forwarded unchanged; a service circuit that is gone is
			// an unknown service.
			if err := svc.sendRelay(relayIntroduce2, 0, m.data); err != nil {
				status = introAckUnknown
			}
		}
		return DestroyNone, rc.sendRelay(relayIntroduceAck, 0, []byte{status})
	case relayEstablishRendezvous:
		if err := t.rend.Establish(rc, m.data, now); err != nil {
			return joinRefusal(err), fmt.Errorf("establish rendezvous: %w", err)
		}
		return DestroyNone, rc.sendRelay(relayRendezvousEstablished, 0, nil)
	case relayRendezvous1:
		cl, r2, err := t.rend.Join(m.data, now)
		if err != nil {
			return DestroyProtocol, fmt.Errorf("rendezvous1: %w", err)
		}
		if cl == rc {
			return DestroyProtocol, fmt.Errorf("rendezvous1 on the client's own circuit: %w", ErrMalformed)
		}
		// Joined from here on: what neither relay layer recognizes goes
		// across. The client sends nothing to the service before it has
		// RENDEZVOUS2, so both links are set before it is sent.
		cl.peer.Store(rc)
		rc.peer.Store(cl)
		select {
		case <-cl.done:
			return DestroyConnect, fmt.Errorf("rendezvous1: client circuit closed: %w", ErrCircuitClosed)
		default:
		}
		if err := cl.sendRelay(relayRendezvous2, 0, r2); err != nil {
			return DestroyConnect, fmt.Errorf("send rendezvous2: %w", err)
		}
		return DestroyNone, nil
	default:
		return DestroyProtocol, fmt.Errorf("relay command %d at a relay: %w", m.cmd, ErrMalformed)
	}
}

// joinRefusal is the DESTROY reason of a table's refusal.
func joinRefusal(err error) DestroyReason {
	if errors.Is(err, service.ErrTableFull) {
		return DestroyResource
	}
	return DestroyProtocol
}

// carry sends cells that came on rc's peer and that no layer of this relay
// recognized towards rc's client, under rc's backward layer: the splice of
// two joined circuits.
func (rc *relayCirc) carry(cells []byte) error {
	if err := rc.r.throttle(rc.ctx, len(cells)); err != nil {
		return fmt.Errorf("%w: %w", ErrCircuitClosed, err)
	}
	rc.pmu.Lock()
	defer rc.pmu.Unlock()
	select {
	case <-rc.done:
		return ErrCircuitClosed
	default:
	}
	for off := 0; off < len(cells); off += CellSize {
		cells[off] = cmdRelay
		rc.l.bwd.wrap(cells[off+1 : off+CellSize])
	}
	if _, err := rc.prev.Write(cells); err != nil {
		return fmt.Errorf("write joined cells: %w: %w", ErrCircuitClosed, err)
	}
	rc.r.forwarded.Add(uint64(len(cells)))
	return nil
}

// leave is what closing does to joining: the tables forget rc, and a
// joined peer closes too.
func (rc *relayCirc) leave(reason DestroyReason, err error) {
	t := rc.r.tables()
	t.intro.Remove(rc)
	t.rend.Remove(rc)
	p := rc.peer.Swap(nil)
	if p == nil {
		return
	}
	p.peer.CompareAndSwap(rc, nil)
	if reason == DestroyNone {
		reason = DestroyRequested
	}
	p.close(reason, fmt.Errorf("joined circuit closed: %w", err))
}
