package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pikcio/pikcio/internal/earlydata"
)

// Optimistic data (issue 16): a stream opened with earlydata is returned as
// soon as its BEGIN has left, and the client's first bytes follow at once.
// The HTTP proxy does this for every plain request (it writes the request
// itself right after the dial, and a failed connect comes back as the
// response's error, which it answers with the precise status). The SOCKS
// front end does it with ServerOptions.SOCKSEarlySuccess: it then replies
// success before the exit has connected (an early success), and a connect
// that fails after all resets the client's connection, so the application
// sees an error rather than a clean close.

// earlyContext marks ctx for optimistic data when on.
func earlyContext(ctx context.Context, on bool) context.Context {
	if !on {
		return ctx
	}
	return earlydata.With(ctx)
}

// resetClient resets the client's connection (a TCP RST), so that a
// failure after an early success reaches the application as an error
// (ECONNRESET), not as the end of a normal reply. It closes the connection
// at once: a FIN sent first would read as that normal end.
func resetClient(w io.Writer) {
	for {
		switch c := w.(type) {
		case *net.TCPConn:
			_ = c.SetLinger(0)
			_ = c.Close()
			return
		case *prefixConn:
			w = c.Conn
		case *trackedConn:
			w = c.Conn
		default:
			return
		}
	}
}

// replayMax bounds what a stream opened with optimistic data keeps of the
// bytes written before the exit connected, to send again if the BEGIN
// fails for a circuit reason: an HTTP request or a TLS ClientHello fits.
// A write beyond it waits for the exit's answer.
const replayMax = 64 << 10

// replayConn is a stream opened with optimistic data (issue 16). Until the
// exit has answered its BEGIN it keeps the bytes written (up to
// replayMax), and if the BEGIN fails for a circuit reason (no answer
// within the begin bound, the circuit died, the circuit was full at the
// exit) it opens the stream again by the rules of Dial, on another
// circuit (through another exit for an unanswered BEGIN), and sends the
// kept bytes and FIN there, as Tor replays a stream's optimistic data: the
// application sees one stream. A destination's refusal is not retried; it
// is the error of the next Read or Write. Read waits for the answer, since
// no byte can come before it; so does a Write that would pass replayMax.
type replayConn struct {
	d      *dial
	ctx    context.Context // the stream's life; canceled by Close
	cancel context.CancelFunc

	wmu sync.Mutex // serializes Write and CloseWrite
	smu sync.Mutex // serializes settle

	mu       sync.Mutex
	cur      *poolStream
	kept     []byte // written before the answer
	fin      bool   // CloseWrite before the answer
	settled  bool   // the answer came: connected, or err
	err      error
	closed   bool
	rdl, wdl time.Time
}

func newReplayConn(d *dial, s *poolStream) *replayConn {
	ctx, cancel := context.WithCancel(earlydata.With(d.p.ctx))
	return &replayConn{d: d, ctx: ctx, cancel: cancel, cur: s}
}

// settle waits for the exit's answer to the current BEGIN and retries on
// a circuit failure, until the stream is connected or has failed for good.
func (r *replayConn) settle() error {
	r.smu.Lock()
	defer r.smu.Unlock()
	for {
		r.mu.Lock()
		if r.settled {
			err := r.err
			r.mu.Unlock()
			return err
		}
		cur := r.cur
		r.mu.Unlock()
		err := r.d.p.connected(r.ctx, cur, r.d.bounded(), r.d.deadline)
		if err == nil {
			r.finish(nil)
			return nil
		}
		_ = cur.Close() // releases the circuit before retry looks at it
		if r.ctx.Err() != nil || !r.d.retry(cur.pc, err) {
			r.finish(err)
			return err
		}
		next, err := r.d.open(r.ctx)
		if err != nil {
			r.finish(err)
			return err
		}
		r.d.p.mu.Lock()
		r.d.p.stats.Replays++
		r.d.p.mu.Unlock()
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			_ = next.Close()
			r.finish(net.ErrClosed)
			return net.ErrClosed
		}
		r.cur = next
		_ = next.SetReadDeadline(r.rdl)
		_ = next.SetWriteDeadline(r.wdl)
		// The kept bytes fit the new stream's first window; a failure
		// shows in the next round's answer.
		if _, err := next.Write(r.kept); err == nil && r.fin {
			_ = next.CloseWrite()
		}
		r.mu.Unlock()
	}
}

func (r *replayConn) finish(err error) {
	r.mu.Lock()
	r.settled, r.err, r.kept = true, err, nil
	r.mu.Unlock()
}

func (r *replayConn) current() *poolStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *replayConn) Read(p []byte) (int, error) {
	if err := r.settle(); err != nil {
		return 0, err
	}
	return r.current().Read(p)
}

// WriteTo lets io.Copy relay without holding a large buffer while idle.
func (r *replayConn) WriteTo(w io.Writer) (int64, error) {
	if err := r.settle(); err != nil {
		return 0, err
	}
	return r.current().WriteTo(w)
}

func (r *replayConn) Write(p []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	if !r.settled && len(r.kept)+len(p) > replayMax {
		r.mu.Unlock()
		if err := r.settle(); err != nil {
			return 0, err
		}
		r.mu.Lock()
	}
	cur := r.cur
	if r.settled {
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return cur.Write(p)
	}
	from := len(r.kept)
	r.kept = append(r.kept, p...)
	r.mu.Unlock()
	n, err := cur.Write(p)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.mu.Lock()
		if !r.settled && r.cur == cur {
			r.kept = r.kept[:from+n]
		}
		r.mu.Unlock()
		return n, err
	}
	// The stream failed before the exit's answer: settle says whether the
	// bytes went again elsewhere.
	if err := r.settle(); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r *replayConn) CloseWrite() error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	if !r.settled {
		r.fin = true
	}
	cur := r.cur
	r.mu.Unlock()
	return cur.CloseWrite()
}

func (r *replayConn) Close() error {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	cur := r.cur
	r.mu.Unlock()
	return cur.Close()
}

func (r *replayConn) LocalAddr() net.Addr  { return r.current().LocalAddr() }
func (r *replayConn) RemoteAddr() net.Addr { return r.current().RemoteAddr() }

func (r *replayConn) SetDeadline(t time.Time) error {
	_ = r.SetReadDeadline(t)
	return r.SetWriteDeadline(t)
}

func (r *replayConn) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rdl = t
	return r.cur.SetReadDeadline(t)
}

func (r *replayConn) SetWriteDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wdl = t
	return r.cur.SetWriteDeadline(t)
}
