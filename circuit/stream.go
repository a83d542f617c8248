package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
)

// signal is a broadcast that can be waited on in a select. Its methods are
// called with the owner's lock held.
type signal struct{ ch chan struct{} }

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// deadline is a settable deadline whose expiry can be waited on.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close the channel
	}
	d.timer = nil
	closed := false
	if d.cancel != nil {
		select {
		case <-d.cancel:
			closed = true
		default:
		}
	}
	if d.cancel == nil || closed {
		d.cancel = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.cancel)
		return
	}
	ch := d.cancel
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}

// relaySender sends a relay message to the far end of the circuit. DATA may
// span up to batchCells cells, which go in one link write.
type relaySender interface {
	sendRelay(cmd byte, stream uint16, data []byte) error
}

// edge is the end of a circuit where streams live: the client, or the exit.
// It owns the streams, their flow control, and a goroutine that returns
// circuit-level credit without blocking the cell reader.
type edge struct {
	out        relaySender
	maxStreams int

	// buf bounds the receive windows of this circuit's streams, relayBuf
	// (nil at a client) those of every circuit at the relay.
	buf, relayBuf *budget

	mu       sync.Mutex
	streams  map[uint16]*Stream
	nextID   uint16
	cc       vegas // circuit-level send window
	windowSg signal
	received int // DATA cells since the last circuit SENDME we sent
	owed     int // circuit SENDMEs to send
	dead     bool
	deadErr  error

	kick   chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
	up     atomic.Uint64 // payload bytes sent
	down   atomic.Uint64 // payload bytes received
	opened atomic.Uint64 // streams opened in total
}

func newEdge(out relaySender, maxStreams int, relayBuf *budget) *edge {
	e := &edge{
		out:        out,
		maxStreams: maxStreams,
		buf:        newBudget(circuitBuffer),
		relayBuf:   relayBuf,
		streams:    make(map[uint16]*Stream),
		cc:         newVegas(),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	e.wg.Add(1)
	go e.sendmeLoop()
	return e
}

func (e *edge) sendmeLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.done:
			return
		case <-e.kick:
		}
		e.mu.Lock()
		n := e.owed
		e.owed = 0
		e.mu.Unlock()
		for ; n > 0; n-- {
			if err := e.out.sendRelay(relaySendme, 0, nil); err != nil {
				return
			}
		}
	}
}

// kill ends every stream with err and stops the SENDME goroutine. It waits
// for that goroutine unless called from it.
func (e *edge) kill(err error) {
	e.mu.Lock()
	if e.dead {
		e.mu.Unlock()
		return
	}
	e.dead = true
	e.deadErr = err
	streams := make([]*Stream, 0, len(e.streams))
	for _, s := range e.streams {
		streams = append(streams, s)
	}
	clear(e.streams)
	e.windowSg.broadcast()
	close(e.done)
	e.mu.Unlock()
	for _, s := range streams {
		s.remoteEnd(err, false)
	}
}

func (e *edge) wait() { e.wg.Wait() }

func (e *edge) numStreams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

func (e *edge) remove(id uint16, s *Stream) {
	e.mu.Lock()
	if e.streams[id] == s {
		delete(e.streams, id)
	}
	e.mu.Unlock()
}

// newStream registers a stream the client opens.
func (e *edge) newStream(remote net.Addr) (*Stream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return nil, e.deadErr
	}
	if len(e.streams) >= e.maxStreams {
		return nil, fmt.Errorf("%d streams open on circuit: %w", len(e.streams), endreason.ErrCircuitFull)
	}
	if !takeBoth(e.buf, e.relayBuf, streamWindowInit) {
		return nil, fmt.Errorf("stream windows of the circuit use its buffer: %w", endreason.ErrMisc)
	}
	for {
		e.nextID++
		if e.nextID == 0 {
			e.nextID = 1
		}
		if _, used := e.streams[e.nextID]; !used {
			break
		}
	}
	s := newStream(e, e.nextID, remote)
	e.streams[s.id] = s
	e.opened.Add(1)
	return s, nil
}

// acceptStream registers a stream the far end asked for with BEGIN.
func (e *edge) acceptStream(id uint16, remote net.Addr) (*Stream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return nil, e.deadErr
	}
	if _, used := e.streams[id]; used {
		return nil, fmt.Errorf("stream %d already open: %w", id, ErrMalformed)
	}
	if len(e.streams) >= e.maxStreams || !takeBoth(e.buf, e.relayBuf, streamWindowInit) {
		return nil, errStreamCap
	}
	s := newStream(e, id, remote)
	close(s.connected)
	e.streams[id] = s
	e.opened.Add(1)
	return s, nil
}

var errStreamCap = errors.New("too many streams or buffered cells on circuit")

// acquireWindow takes between one and want cells of circuit credit.
func (e *edge) acquireWindow(want int, dl <-chan struct{}, streamDone <-chan struct{}) (int, error) {
	e.mu.Lock()
	for {
		if e.dead {
			err := e.deadErr
			e.mu.Unlock()
			return 0, err
		}
		if room := e.cc.room(); room > 0 {
			got := min(want, room)
			e.cc.onSend(got, time.Now())
			e.mu.Unlock()
			return got, nil
		}
		ch := e.windowSg.wait()
		e.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
			return 0, os.ErrDeadlineExceeded
		case <-streamDone:
			return 0, net.ErrClosed
		}
		e.mu.Lock()
	}
}

// handle processes a stream or flow-control message from the far end. An
// error means the far end broke the protocol and the circuit must close.
func (e *edge) handle(m relayMsg) error {
	if m.stream == 0 {
		if m.cmd != relaySendme {
			return fmt.Errorf("relay command %d on the circuit: %w", m.cmd, ErrMalformed)
		}
		e.mu.Lock()
		err := e.cc.onSendme(time.Now())
		e.windowSg.broadcast()
		e.mu.Unlock()
		return err
	}
	e.mu.Lock()
	s := e.streams[m.stream]
	if m.cmd == relayData {
		e.received++
		if e.received >= circuitIncr {
			e.received -= circuitIncr
			e.owed++
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
	}
	e.mu.Unlock()
	if s == nil {
		// A stream we closed; cells in flight are dropped.
		return nil
	}
	switch m.cmd {
	case relayData:
		e.down.Add(uint64(len(m.data)))
		return s.deliver(m.data)
	case relayFin:
		s.remoteFin()
	case relayEnd:
		if len(m.data) != 1 {
			return fmt.Errorf("end of %d bytes: %w", len(m.data), ErrMalformed)
		}
		s.remoteEnd(endreason.Reason(m.data[0]).Err(), true)
	case relaySendme:
		return s.credit()
	case relayConnected:
		return s.remoteConnected()
	case relayResolved:
		return s.resolved(m.data)
	default:
		return fmt.Errorf("relay command %d on a stream: %w", m.cmd, ErrMalformed)
	}
	return nil
}

// streamAddr names the destination of a stream.
type streamAddr struct {
	host string
	port uint16
}

func (a streamAddr) Network() string { return "pikcio" }
func (a streamAddr) String() string  { return net.JoinHostPort(a.host, strconv.Itoa(int(a.port))) }

// Stream is one TCP stream carried on a circuit. It is a net.Conn with
// CloseWrite for half-close.
type Stream struct {
	e      *edge
	id     uint16
	remote net.Addr

	connected  chan struct{} // closed once the exit answered
	connectErr error         // set before connected closes

	wmu sync.Mutex // serializes Write so chunks stay in order

	mu        sync.Mutex
	rq        []chunk
	rcells    int    // cells buffered
	rcredit   int    // cells the far end may still send: granted, not yet received
	rwin      int    // receive window: rcells+rcredit stays within it
	grown     int    // cells read since the window last grew
	released  bool   // rwin given back to the budgets
	onEnd     func() // called once when the far end or the circuit ends the stream
	rEOF      bool
	rErr      error // terminal read error
	rSig      signal
	window    int // stream-level send credit
	wSig      signal
	wClosed   bool // we sent FIN (or END)
	wErr      error
	ended     bool // gone from the edge
	closed    chan struct{}
	closeOnce sync.Once

	readDL, writeDL deadline
}

type chunk struct {
	cell *[]byte
	data []byte
}

var _ net.Conn = (*Stream)(nil)

func newStream(e *edge, id uint16, remote net.Addr) *Stream {
	return &Stream{
		e:         e,
		id:        id,
		remote:    remote,
		connected: make(chan struct{}),
		window:    streamWindowInit,
		rcredit:   streamWindowInit,
		rwin:      streamWindowInit,
		closed:    make(chan struct{}),
	}
}

// deliver queues a copy of DATA for the reader.
func (s *Stream) deliver(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.rEOF {
		if s.rEOF && !s.ended {
			return fmt.Errorf("data after FIN on stream %d: %w", s.id, ErrMalformed)
		}
		return nil
	}
	if s.rcredit <= 0 {
		return fmt.Errorf("stream %d exceeded its window: %w", s.id, ErrMalformed)
	}
	s.rcredit--
	// Buffers are sized to the payload: a pooled cell for a full one, an
	// exact copy for a small one (a window of one-byte cells is not a
	// window of whole cells in memory).
	var c chunk
	if len(data) > MaxCellData/2 {
		c.cell = getCell()
		c.data = (*c.cell)[:copy(*c.cell, data)]
	} else {
		c.data = append([]byte(nil), data...)
	}
	s.rq = append(s.rq, c)
	s.rcells++
	s.rSig.broadcast()
	return nil
}

func (s *Stream) remoteFin() {
	s.mu.Lock()
	s.rEOF = true
	s.rSig.broadcast()
	both := s.wClosed && !s.ended
	if both {
		s.ended = true
	}
	s.mu.Unlock()
	if both {
		s.e.remove(s.id, s)
	}
}

// remoteEnd ends the stream because the far end sent END (fromPeer) or the
// circuit died. A nil err is a normal close.
func (s *Stream) remoteEnd(err error, fromPeer bool) {
	s.mu.Lock()
	if s.ended && s.rErr != nil {
		s.mu.Unlock()
		return
	}
	s.ended = true
	if err == nil {
		err = io.EOF
	}
	if s.rErr == nil {
		s.rErr = err
	}
	if s.wErr == nil {
		if errors.Is(err, io.EOF) {
			s.wErr = fmt.Errorf("stream %d closed by peer: %w", s.id, ErrStreamClosed)
		} else {
			s.wErr = err
		}
	}
	s.rSig.broadcast()
	s.wSig.broadcast()
	select {
	case <-s.connected:
	default:
		s.connectErr = err
		if errors.Is(err, io.EOF) {
			s.connectErr = endreason.ErrMisc
		}
		close(s.connected)
	}
	hook := s.onEnd
	s.onEnd = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fromPeer {
		s.e.remove(s.id, s)
	}
}

func (s *Stream) remoteConnected() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.connected:
		return fmt.Errorf("CONNECTED twice on stream %d: %w", s.id, ErrMalformed)
	default:
		close(s.connected)
		return nil
	}
}

func (s *Stream) credit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.window += streamIncrement
	s.wSig.broadcast()
	if s.window > streamWindowMax {
		return fmt.Errorf("stream %d SENDME beyond the largest window: %w", s.id, ErrMalformed)
	}
	return nil
}

// growWindow grows the receive window sixteenfold (streamGrowth) when the reader
// has emptied the queue after reading half a window since the last growth:
// the reader keeps up, so the window, not the reader, limits the stream. A
// reader that falls behind leaves cells queued and the window where it is.
// Growth is reserved from the circuit's and the relay's budgets, and takes
// what fits below circuitGrowth (the circuit's windows together), so that
// a lone stream reaches the largest window and new streams still find
// their initial one in circuitBuffer.
// Called with s.mu.
func (s *Stream) growWindow() {
	if len(s.rq) > 0 || s.grown < s.rwin/2 || s.rwin >= streamWindowMax || s.released {
		return
	}
	add := min(s.rwin*(streamGrowth-1), streamWindowMax-s.rwin, circuitGrowth-s.e.buf.inUse())
	if add <= 0 || !takeBoth(s.e.buf, s.e.relayBuf, add) {
		return
	}
	s.rwin += add
	s.grown = 0
}

// releaseWindow gives the receive window back to the budgets, once.
// Called with s.mu.
func (s *Stream) releaseWindow() {
	if s.released {
		return
	}
	s.released = true
	s.e.buf.give(s.rwin)
	s.e.relayBuf.give(s.rwin)
}

// Read reads stream data.
func (s *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.mu.Lock()
		if len(s.rq) > 0 {
			n := 0
			freed := 0
			for n < len(p) && len(s.rq) > 0 {
				c := &s.rq[0]
				k := copy(p[n:], c.data)
				n += k
				c.data = c.data[k:]
				if len(c.data) == 0 {
					putCell(c.cell)
					s.rq[0] = chunk{}
					s.rq = s.rq[1:]
					freed++
				}
			}
			if len(s.rq) == 0 {
				s.rq = nil
			}
			s.rcells -= freed
			sendme := 0
			if !s.ended && !s.rEOF {
				s.grown += freed
				s.growWindow()
				for s.rcells+s.rcredit+streamIncrement <= s.rwin {
					s.rcredit += streamIncrement
					sendme++
				}
			}
			s.mu.Unlock()
			for ; sendme > 0; sendme-- {
				if err := s.e.out.sendRelay(relaySendme, s.id, nil); err != nil {
					break
				}
			}
			return n, nil
		}
		if s.rErr != nil {
			err := s.rErr
			s.mu.Unlock()
			return 0, err
		}
		if s.rEOF {
			s.mu.Unlock()
			return 0, io.EOF
		}
		ch := s.rSig.wait()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.readDL.wait():
			return 0, os.ErrDeadlineExceeded
		case <-s.closed:
			return 0, net.ErrClosed
		}
	}
}

// Write sends stream data, blocking while the flow-control windows are shut.
func (s *Stream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := 0
	for len(p) > 0 {
		want := min(batchCells, (len(p)+MaxCellData-1)/MaxCellData)
		got, err := s.acquire(want)
		if err != nil {
			return n, err
		}
		k := min(len(p), got*MaxCellData)
		if err := s.e.out.sendRelay(relayData, s.id, p[:k]); err != nil {
			return n, err
		}
		s.e.up.Add(uint64(k))
		n += k
		p = p[k:]
	}
	return n, nil
}

// acquire takes between one and want cells of stream and circuit credit.
func (s *Stream) acquire(want int) (int, error) {
	dl := s.writeDL.wait()
	s.mu.Lock()
	for {
		select {
		case <-s.closed:
			s.mu.Unlock()
			return 0, net.ErrClosed
		default:
		}
		if s.wErr != nil {
			err := s.wErr
			s.mu.Unlock()
			return 0, err
		}
		if s.wClosed {
			s.mu.Unlock()
			return 0, fmt.Errorf("write after CloseWrite: %w", ErrStreamClosed)
		}
		if s.window > 0 {
			take := min(want, s.window)
			s.window -= take
			s.mu.Unlock()
			got, err := s.e.acquireWindow(take, dl, s.closed)
			if got < take {
				s.mu.Lock()
				s.window += take - got
				s.mu.Unlock()
			}
			return got, err
		}
		ch := s.wSig.wait()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
			return 0, os.ErrDeadlineExceeded
		case <-s.closed:
			return 0, net.ErrClosed
		}
		s.mu.Lock()
	}
}

// CloseWrite half-closes the stream: the far end reads EOF, and can still send.
func (s *Stream) CloseWrite() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.wClosed || s.ended {
		s.mu.Unlock()
		return nil
	}
	s.wClosed = true
	both := s.rEOF
	if both {
		s.ended = true
	}
	s.mu.Unlock()
	err := s.e.out.sendRelay(relayFin, s.id, nil)
	if both {
		s.e.remove(s.id, s)
	}
	return err
}

// Close closes the stream in both directions.
func (s *Stream) Close() error {
	return s.closeWith(endreason.ReasonDone)
}

func (s *Stream) closeWith(r endreason.Reason) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.mu.Lock()
		sendEnd := !s.ended
		s.ended = true
		s.wClosed = true
		if s.rErr == nil {
			s.rErr = net.ErrClosed
		}
		for _, c := range s.rq {
			putCell(c.cell)
		}
		s.rq = nil
		s.rcells = 0
		s.releaseWindow()
		s.rSig.broadcast()
		s.wSig.broadcast()
		s.mu.Unlock()
		s.readDL.set(time.Time{})
		s.writeDL.set(time.Time{})
		if sendEnd {
			s.e.remove(s.id, s)
			err = s.e.out.sendRelay(relayEnd, s.id, []byte{byte(r)})
			if errors.Is(err, ErrCircuitClosed) {
				err = nil
			}
		}
	})
	return err
}

// setOnEnd arranges for f to run once the far end or the circuit ends the
// stream (at once if that has happened).
func (s *Stream) setOnEnd(f func()) {
	s.mu.Lock()
	if !s.ended || s.rErr == nil {
		s.onEnd = f
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	f()
}

// ID is the stream's number on its circuit.
func (s *Stream) ID() uint16 { return s.id }

// LocalAddr is a *net.TCPAddr (0.0.0.0:0): the stream has no local address of
// its own, and some SOCKS libraries assert this type.
func (s *Stream) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

// RemoteAddr is the destination as the client named it.
func (s *Stream) RemoteAddr() net.Addr { return s.remote }

func (s *Stream) SetDeadline(t time.Time) error {
	s.readDL.set(t)
	s.writeDL.set(t)
	return nil
}

func (s *Stream) SetReadDeadline(t time.Time) error  { s.readDL.set(t); return nil }
func (s *Stream) SetWriteDeadline(t time.Time) error { s.writeDL.set(t); return nil }

// Connected waits for the exit's answer to the stream's BEGIN, for a
// stream opened with optimistic data (earlydata): nil once the exit has
// connected, the exit's error (wrapping the endreason sentinels) if it
// refused, the circuit's if the circuit failed first, and context.Cause of
// ctx if ctx ends first (the stream stays open: closing it is the
// caller's choice).
func (s *Stream) Connected(ctx context.Context) error {
	select {
	case <-s.connected:
		return s.connectErr
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// waitConnected waits for the exit's answer to BEGIN.
func (s *Stream) waitConnected(ctx context.Context) error {
	select {
	case <-s.connected:
		return s.connectErr
	case <-ctx.Done():
		_ = s.closeWith(endreason.ReasonTimeout)
		return fmt.Errorf("open stream: %w: %w", endreason.ErrTimeout, ctx.Err())
	}
}
