package node

import (
	"context"
	"errors"
	"net"
	"strconv"
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
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, proxy.ErrClosed) {
		kind, msg := "dial", "connection failed"
		for _, k := range dialKinds {
			if errors.Is(err, k.err) {
				kind, msg = k.kind, k.err.Error()
				break
			}
		}
		d.act.Record(kind, msg, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	return c, err
}

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
