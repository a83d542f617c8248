package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
)

// Observing a Dialer's streams for the status page and the metrics: which
// dials fail and why, and how long the first byte takes. A wrapper is no
// Resolver: WithResolver adds one.

// failureKinds classify dial failures; the message is the sentinel's own
// text, which never names the destination.
var failureKinds = []struct {
	err  error
	kind string
}{
	{endreason.ErrPolicy, "policy"},
	{endreason.ErrResolve, "resolve"},
	{endreason.ErrRefused, "refused"},
	{endreason.ErrUnreachable, "unreachable"},
	{endreason.ErrTimeout, "timeout"},
	{ErrNoCircuit, "circuit"},
	{ErrTooManyCircuits, "circuit"},
	{context.DeadlineExceeded, "timeout"},
}

// FailureKind classifies a dial error for a record without its
// destination: a short kind ("policy", "resolve", "refused",
// "unreachable", "timeout", "circuit", or "dial" for any other) and a
// message that is the sentinel's text, never err's own. known is false for
// an error of no listed kind; ok is false for what is no failure (the
// caller's cancel, a closed server).
func FailureKind(err error) (kind, msg string, known, ok bool) {
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
		return "", "", false, false
	}
	for _, k := range failureKinds {
		if errors.Is(err, k.err) {
			return k.kind, k.err.Error(), true, true
		}
	}
	return "dial", "connection failed", false, true
}

// FailureRecorder is told of each failed dial, with the kind and message
// of FailureKind and the destination as host:port (for a memory that
// shows it only on request).
type FailureRecorder func(kind, msg, dest string)

// RecordFailures wraps d: rec is told of every dial that fails, and of a
// stream opened with optimistic data whose connect fails on its first
// read (before any data) with an error of a known kind.
func RecordFailures(d Dialer, rec FailureRecorder) Dialer {
	return observed{Dialer: d, dial: func(ctx context.Context, key, host string, port uint16) (net.Conn, error) {
		dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
		c, err := d.Dial(ctx, key, host, port)
		if err != nil {
			record(rec, err, dest)
			return nil, err
		}
		return onFirstRead(c, func(n int, err error) {
			if n > 0 || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			if _, _, known, _ := FailureKind(err); known {
				record(rec, err, dest)
			}
		}), nil
	}}
}

func record(rec FailureRecorder, err error, dest string) {
	if kind, msg, _, ok := FailureKind(err); ok {
		rec(kind, msg, dest)
	}
}

// TimeFirstByte wraps d: observe is given, for each stream whose first
// read returns data, the time from the start of its dial to then.
func TimeFirstByte(d Dialer, observe func(time.Duration)) Dialer {
	return observed{Dialer: d, dial: func(ctx context.Context, key, host string, port uint16) (net.Conn, error) {
		start := time.Now()
		c, err := d.Dial(ctx, key, host, port)
		if err != nil {
			return nil, err
		}
		return onFirstRead(c, func(n int, _ error) {
			if n > 0 {
				observe(time.Since(start))
			}
		}), nil
	}}
}

// observed is a Dialer whose Dial is dial.
type observed struct {
	Dialer
	dial func(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error)
}

func (o observed) Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error) {
	return o.dial(ctx, isolationKey, host, port)
}

// WithResolver is d answering SOCKS RESOLVE and RESOLVE_PTR through r.
func WithResolver(d Dialer, r Resolver) Dialer { return dialResolver{d, r} }

type dialResolver struct {
	Dialer
	Resolver
}

// onFirstRead wraps c: f is called once, with what the first read that
// returns data or an error returned.
func onFirstRead(c net.Conn, f func(n int, err error)) net.Conn {
	return &firstRead{Conn: c, f: f}
}

type firstRead struct {
	net.Conn
	f    func(n int, err error)
	done atomic.Bool
}

func (c *firstRead) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if (n > 0 || err != nil) && !c.done.Swap(true) {
		c.f(n, err)
	}
	return n, err
}

// CloseWrite half-closes the stream, as the proxies expect of a dialed conn.
func (c *firstRead) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// LocalAddr is the stream's own (a *net.TCPAddr, which SOCKS libraries assert).
func (c *firstRead) LocalAddr() net.Addr { return c.Conn.LocalAddr() }
