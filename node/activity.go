package node

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/web"
)

// Limits of what the status page remembers, in memory only.
const (
	// throughputSamples is one sample per second over web.ThroughputWindow.
	throughputSamples = int(web.ThroughputWindow / time.Second)
	// maxRecentErrors bounds the recent errors kept.
	maxRecentErrors = 50
)

// activity is what the node remembers for its status page: throughput
// per second and recent errors. Destinations of errors are kept in
// memory, never logged or written, and shown only on request.
type activity struct {
	mu      sync.Mutex
	ring    []web.Sample // oldest first once full
	next    int
	full    bool
	lastUp  uint64
	lastDn  uint64
	started bool
	// Cumulative client payload: closed circuits' last counts plus live.
	seen       map[*circuit.Circuit][2]uint64
	closedUp   uint64
	closedDown uint64
	totalUp    uint64
	totalDown  uint64
	errs       []web.ErrorEntry // newest last
}

func newActivity() *activity {
	return &activity{ring: make([]web.Sample, throughputSamples), seen: map[*circuit.Circuit][2]uint64{}}
}

// sampleClient adds the traffic of the client's circuits since the last
// sample.
func (a *activity) sampleClient(now time.Time, circs []*circuit.Circuit) {
	a.mu.Lock()
	defer a.mu.Unlock()
	live := make(map[*circuit.Circuit][2]uint64, len(circs))
	var up, down uint64
	for _, c := range circs {
		st := c.Stats()
		live[c] = [2]uint64{st.BytesUp, st.BytesDown}
		up += st.BytesUp
		down += st.BytesDown
	}
	for c, b := range a.seen {
		if _, ok := live[c]; !ok {
			a.closedUp += b[0]
			a.closedDown += b[1]
		}
	}
	a.seen = live
	a.addLocked(now, a.closedUp+up, a.closedDown+down)
}

// sampleRelay adds the relay's forwarded cell bytes since the last sample.
func (a *activity) sampleRelay(now time.Time, bytes uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addLocked(now, 0, bytes)
}

func (a *activity) addLocked(now time.Time, up, down uint64) {
	a.totalUp, a.totalDown = up, down
	if !a.started {
		a.started = true
		a.lastUp, a.lastDn = up, down
		return
	}
	s := web.Sample{Time: now.Unix()}
	if up >= a.lastUp {
		s.Up = up - a.lastUp
	}
	if down >= a.lastDn {
		s.Down = down - a.lastDn
	}
	a.lastUp, a.lastDn = up, down
	a.ring[a.next] = s
	a.next = (a.next + 1) % len(a.ring)
	if a.next == 0 {
		a.full = true
	}
}

// samples returns the samples, oldest first.
func (a *activity) samples() []web.Sample {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]web.Sample, 0, len(a.ring))
	if a.full {
		out = append(out, a.ring[a.next:]...)
	}
	return append(out, a.ring[:a.next]...)
}

// totals are the client's payload bytes since start.
func (a *activity) totals() (up, down uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.totalUp, a.totalDown
}

// record remembers an error; dest may be "".
func (a *activity) record(kind, msg, dest string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) == maxRecentErrors {
		a.errs = append(a.errs[:0], a.errs[1:]...)
	}
	a.errs = append(a.errs, web.ErrorEntry{Time: time.Now().UTC(), Kind: kind, Message: msg, Destination: dest})
}

// recent returns the errors, newest first, with destinations only if
// asked.
func (a *activity) recent(destinations bool) []web.ErrorEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]web.ErrorEntry, 0, len(a.errs))
	for i := len(a.errs) - 1; i >= 0; i-- {
		e := a.errs[i]
		if !destinations {
			e.Destination = ""
		}
		out = append(out, e)
	}
	return out
}

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
	act  *activity
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
	d.act.record(kind, msg, dest)
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
			n.activity.sampleClient(now, cc.Circuits())
		case relay != nil:
			n.activity.sampleRelay(now, relay.Stats().Bytes)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}
