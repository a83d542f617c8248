package node

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/proxy"
)

// nodeMetrics is the node's Prometheus registry, served at the status
// page's /metrics: the status page's pikcio_* collector, the histograms
// below, and go-libp2p's own collectors (swarm, identify, resource
// manager...). go-libp2p keeps its metrics in package variables, so nodes in
// one process (the demo, tests) report the sum of their hosts. No label
// carries a destination or a peer ID.
type nodeMetrics struct {
	reg   *prometheus.Registry
	build prometheus.Histogram
	ttfb  prometheus.Histogram
}

// Buckets in seconds: circuit builds on loopback take milliseconds, over the
// Internet up to the build timeout (60 s); the first byte of a response
// comes after the exit's connect and the server's think time.
var (
	buildBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	ttfbBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

func newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pikcio_circuit_build_seconds",
			Help:    "Time to build one circuit (one path attempt that succeeded).",
			Buckets: buildBuckets,
		}),
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pikcio_stream_first_byte_seconds",
			Help:    "Time from a proxy's stream open to the first byte from the destination.",
			Buckets: ttfbBuckets,
		}),
	}
	m.reg.MustRegister(m.build, m.ttfb)
	rcmgr.MustRegisterWith(m.reg)
	return m
}

// hostOptions make the host report to the registry.
func (m *nodeMetrics) hostOptions() []libp2p.Option {
	return []libp2p.Option{libp2p.PrometheusRegisterer(m.reg)}
}

// timePath wraps a Builder's build function: successful builds are
// observed.
func (m *nodeMetrics) timePath(build discovery.BuildFunc[*circuit.Circuit]) discovery.BuildFunc[*circuit.Circuit] {
	return func(ctx context.Context, path []*discovery.Descriptor) (*circuit.Circuit, error) {
		start := time.Now()
		c, err := build(ctx, path)
		if err == nil {
			m.build.Observe(time.Since(start).Seconds())
		}
		return c, err
	}
}

// dialer wraps the proxies' Dialer: each stream observes the time to its
// first byte. RESOLVE and RESOLVE_PTR go to r.
func (m *nodeMetrics) dialer(d proxy.Dialer, r proxy.Resolver) proxy.Dialer {
	return ttfbDialer{d: d, Resolver: r, h: m.ttfb}
}

type ttfbDialer struct {
	d proxy.Dialer
	proxy.Resolver
	h prometheus.Histogram
}

func (d ttfbDialer) Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error) {
	start := time.Now()
	c, err := d.d.Dial(ctx, isolationKey, host, port)
	if err != nil {
		return nil, err
	}
	return &ttfbConn{Conn: c, start: start, h: d.h}, nil
}

// ttfbConn observes its first read of data.
type ttfbConn struct {
	net.Conn
	start time.Time
	h     prometheus.Histogram
	once  sync.Once
}

func (c *ttfbConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { c.h.Observe(time.Since(c.start).Seconds()) })
	}
	return n, err
}

// CloseWrite half-closes the stream, as the proxies expect of a Dialer's
// conn.
func (c *ttfbConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
