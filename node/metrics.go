package node

import (
	"context"
	"time"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/web"
)

// timeBuilds wraps a Builder's build function: successful builds are
// observed in m (web.Metrics, with the time to first byte that
// proxy.TimeFirstByte measures, and go-libp2p's collectors).
func timeBuilds(m *web.Metrics, build discovery.BuildFunc[*circuit.Circuit]) discovery.BuildFunc[*circuit.Circuit] {
	return func(ctx context.Context, path []*discovery.Descriptor) (*circuit.Circuit, error) {
		start := time.Now()
		c, err := build(ctx, path)
		if err == nil {
			m.ObserveBuild(time.Since(start))
		}
		return c, err
	}
}

// newMetrics is the node's registry with go-libp2p's resource manager
// collectors (the host adds the swarm's and identify's).
func newMetrics() *web.Metrics {
	m := web.NewMetrics()
	rcmgr.MustRegisterWith(m.Registry)
	return m
}
