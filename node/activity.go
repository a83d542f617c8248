package node

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/web"
)

// dialKinds classify dial failures; the message is the sentinel's own
// text, which never names the destination.
var dialKinds = []struct {
	err  error
	kind string
}{
	{endreason.ErrPolicy, "policy"},
	{endreason.ErrResolve, "resolve"},
	{endreason.ErrRefused, "refused"},
	{endreason.ErrUnreachable, "unreachable"},
	{endreason.ErrTimeout, "timeout"},
	{proxy.ErrNoCircuit, "circuit"},
	{proxy.ErrTooManyCircuits, "circuit"},
	{context.DeadlineExceeded, "timeout"},
}

// recordingDialer is the proxies' Dialer: the pool, with failures noted
// for the status page.
type recordingDialer struct {
	pool *proxy.Pool
	act  *web.Activity
}

var _ proxy.Dialer = recordingDialer{}

func (d recordingDialer) Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error) {
	c, err := d.pool.Dial(ctx, isolationKey, host, port)
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if err != nil {
		d.recordErr(err, dest)
		return nil, err
	}
	// With optimistic data a connect that fails shows on the first read.
	return &firstReadRecorder{Conn: c, d: d, dest: dest}, nil
}

func (d recordingDialer) recordErr(err error, dest string) {
	if errors.Is(err, context.Canceled) || errors.Is(err, proxy.ErrClosed) {
		return
	}
	kind, msg := "dial", "connection failed"
	for _, k := range dialKinds {
		if errors.Is(err, k.err) {
			kind, msg = k.kind, k.err.Error()
			break
		}
	}
	d.act.Record(kind, msg, dest)
}

// firstReadRecorder records a failed connect that a stream opened with
// optimistic data reports on its first read, before any data.
type firstReadRecorder struct {
	net.Conn
	d    recordingDialer
	dest string
	read atomic.Bool // data or an error was read
}

func (c *firstReadRecorder) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if (n > 0 || err != nil) && !c.read.Swap(true) && n == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		for _, k := range dialKinds {
			if errors.Is(err, k.err) {
				c.d.recordErr(err, c.dest)
				break
			}
		}
	}
	return n, err
}

// CloseWrite half-closes the stream, as the proxies expect of a dialed conn.
func (c *firstReadRecorder) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// LocalAddr is the stream's own (a *net.TCPAddr, which SOCKS libraries assert).
func (c *firstReadRecorder) LocalAddr() net.Addr { return c.Conn.LocalAddr() }

// sampleLoop samples throughput every second until the node closes.
func (n *Node) sampleLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n.mu.Lock()
		cc, relay := n.cc, n.relay
		n.mu.Unlock()
		now := time.Now()
		switch {
		case cc != nil:
			live := map[any][2]uint64{}
			for _, c := range cc.Circuits() {
				st := c.Stats()
				live[c] = [2]uint64{st.BytesUp, st.BytesDown}
			}
			n.activity.SampleCircuits(now, live)
		case relay != nil:
			n.activity.SampleRelay(now, relay.Stats().Bytes)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}
