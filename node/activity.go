package node

import (
	"time"

	"github.com/pikcio/pikcio/internal/sleep"
)

// sampleLoop samples throughput every second until the node closes.
func (n *Node) sampleLoop() {
	sample := func() {
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
	}
	sample()
	sleep.Every(n.ctx, time.Second, nil, sample)
}
