package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Relay buffers. A relay waits for data with a small buffer and switches to
// a large pooled one only while reads keep filling the small one, so an idle
// connection holds waitBufSize bytes per direction instead of 32 KiB.
const (
	waitBufSize = 1 << 10
	bulkBufSize = 32 << 10
)

var bulkBufs = sync.Pool{New: func() any { b := make([]byte, bulkBufSize); return &b }}

// copyAdaptive copies src to dst until EOF (returning nil) or an error.
func copyAdaptive(dst io.Writer, src io.Reader) (written int64, err error) {
	small := make([]byte, waitBufSize)
	buf := small
	var bulk *[]byte
	defer func() {
		if bulk != nil {
			bulkBufs.Put(bulk)
		}
	}()
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if m != n {
				return written, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return written, nil
			}
			return written, rerr
		}
		switch {
		case n == len(buf) && bulk == nil:
			// More is probably waiting: read it in bulk.
			bulk = bulkBufs.Get().(*[]byte)
			buf = *bulk
		case n < len(buf) && bulk != nil:
			// Drained: wait for the next burst with the small buffer.
			bulkBufs.Put(bulk)
			bulk, buf = nil, small
		}
	}
}

// closeWrite half-closes c, or closes it if it cannot half-close, so that
// the peer sees EOF either way.
func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// relay copies between a and b in both directions, passing half-closes
// through, and closes both when both directions are done. An error in one
// direction closes both so the other ends too.
func relay(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(b, a)
	}()
	pipe(a, b)
	<-done
	_ = a.Close()
	_ = b.Close()
}

func pipe(dst, src net.Conn) {
	if n, err := copyAdaptive(dst, src); err != nil {
		if n == 0 {
			resetClient(dst) // e.g. a refused connect after an early SOCKS success
		}
		_ = dst.Close()
		_ = src.Close()
		return
	}
	closeWrite(dst)
}

// tracker owns the connections and goroutines of a front end, so that Close
// can close every connection (including ones a library holds) and wait for
// every goroutine.
type tracker struct {
	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{}
	wg     sync.WaitGroup
}

func newTracker() *tracker {
	return &tracker{conns: make(map[io.Closer]struct{})}
}

// add tracks c; after close it closes c and reports false.
func (t *tracker) add(c io.Closer) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return true
}

func (t *tracker) remove(c io.Closer) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// start counts one goroutine that must call done; after close it reports
// false and the goroutine must not run.
func (t *tracker) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) done() { t.wg.Done() }

// close closes every tracked connection; later adds fail.
func (t *tracker) close() {
	t.mu.Lock()
	t.closed = true
	conns := make([]io.Closer, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	clear(t.conns)
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (t *tracker) wait() { t.wg.Wait() }

// trackedConn is an accepted client connection known to a tracker.
type trackedConn struct {
	net.Conn
	t    *tracker
	once sync.Once
}

func (t *tracker) wrap(c net.Conn) (*trackedConn, bool) {
	tc := &trackedConn{Conn: c, t: t}
	return tc, t.add(tc)
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.t.remove(c) })
	return err
}

func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *trackedConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return nil
}

// trackListener tracks every connection it accepts.
type trackListener struct {
	net.Listener
	t *tracker
}

func (l trackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc, ok := l.t.wrap(c); ok {
			return tc, nil
		}
	}
}

// acceptLoop accepts until l fails; it backs off on temporary errors and
// returns nil once l is closed.
func acceptLoop(l net.Listener, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		handle(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// linger reads and discards what a refused client already sent, for a short
// while, after half-closing: closing with unread data would reset the
// connection and the client could lose the answer.
func linger(c net.Conn) {
	closeWrite(c)
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c, lingerMax)
}

// trackedStream is a dialed stream known to a tracker. Its LocalAddr is
// always 0.0.0.0:0, which is what a SOCKS reply then carries (as Tor does):
// nothing about the client's side leaks into replies.
type trackedStream struct {
	net.Conn
	t    *tracker
	once sync.Once
}

func (s *trackedStream) Close() error {
	err := s.Conn.Close()
	s.once.Do(func() { s.t.remove(s) })
	return err
}

func (s *trackedStream) CloseWrite() error {
	closeWrite(s.Conn)
	return nil
}

func (s *trackedStream) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

// WriteTo relays the stream to w (io.Copy in a library hands over here), and
// the tracker counts it so Close can wait for it.
func (s *trackedStream) WriteTo(w io.Writer) (int64, error) {
	if !s.t.start() {
		return 0, ErrClosed
	}
	defer s.t.done()
	n, err := copyAdaptive(w, s.Conn)
	if err != nil && n == 0 {
		resetClient(w) // e.g. a refused connect after an early SOCKS success
	}
	return n, err
}
