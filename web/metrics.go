package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are served by github.com/prometheus/client_golang from a
// prometheus.Registry: the status collector below turns each scrape's
// snapshot (without destinations) into pikcio_* gauges and counters, and the
// node registers on the same registry its histograms (circuit build time,
// time to first byte) and go-libp2p's collectors (resource manager, swarm).
// No label carries a destination or a peer ID.

// Metrics is a node's Prometheus registry, served at the status page's
// /metrics (Options.Metrics): the status collector, the histograms below,
// and what the node registers besides (go-libp2p's collectors: swarm,
// identify, resource manager; go-libp2p keeps its metrics in package
// variables, so nodes in one process, the demo and tests, report the sum
// of their hosts).
type Metrics struct {
	Registry *prometheus.Registry
	build    prometheus.Histogram
	ttfb     prometheus.Histogram
}

// Buckets in seconds: circuit builds on loopback take milliseconds, over the
// Internet up to the build timeout (60 s); the first byte of a response
// comes after the exit's connect and the server's think time.
var (
	buildBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	ttfbBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// NewMetrics is a registry with the circuit build-time and time-to-first-
// byte histograms registered.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
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
	m.Registry.MustRegister(m.build, m.ttfb)
	return m
}

// ObserveBuild records the time of one circuit build that succeeded.
func (m *Metrics) ObserveBuild(d time.Duration) { m.build.Observe(d.Seconds()) }

// ObserveFirstByte records a stream's time from its open to its first
// byte from the destination.
func (m *Metrics) ObserveFirstByte(d time.Duration) { m.ttfb.Observe(d.Seconds()) }

// metricsHandler serves the registry reg (a new one when nil) with the
// status collector of src registered on it.
func metricsHandler(src Source, reg *prometheus.Registry) http.Handler {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(statusCollector{src})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// statusCollector is an unchecked prometheus.Collector (its families depend
// on the node's roles) over Source.Status.
type statusCollector struct{ src Source }

func (statusCollector) Describe(chan<- *prometheus.Desc) {}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	collectStatus(metricSink{ch}, c.src.Status(false))
}

type metricSink struct{ ch chan<- prometheus.Metric }

// emit sends one sample; labels are name, value pairs.
func (m metricSink) emit(name, help string, t prometheus.ValueType, v float64, labels ...string) {
	var names, values []string
	for i := 0; i+1 < len(labels); i += 2 {
		names = append(names, labels[i])
		values = append(values, labels[i+1])
	}
	desc := prometheus.NewDesc(name, help, names, nil)
	m.ch <- prometheus.MustNewConstMetric(desc, t, v, values...)
}

func (m metricSink) gauge(name, help string, v float64, labels ...string) {
	m.emit(name, help, prometheus.GaugeValue, v, labels...)
}

func (m metricSink) counter(name, help string, v uint64, labels ...string) {
	m.emit(name, help, prometheus.CounterValue, float64(v), labels...)
}

func collectStatus(m metricSink, s Status) {
	m.gauge("pikcio_info", "The node's version; always 1.", 1, "version", s.Version)
	m.gauge("pikcio_uptime_seconds", "Seconds since the node started.", s.Uptime)
	m.gauge("pikcio_joined", "1 when the node has joined the network.", b2f(s.Joined))
	m.gauge("pikcio_relays_known", "Usable relay descriptors in the directory.", float64(s.Network.RelaysKnown))
	m.gauge("pikcio_exits_known", "Usable exit relays in the directory.", float64(s.Network.ExitsKnown))
	m.gauge("pikcio_guards", "The client's entry guards.", float64(s.Network.Guards))
	m.gauge("pikcio_dht_peers", "Peers in the DHT routing table.", float64(s.Network.DHTPeers))
	m.gauge("pikcio_trust_identities", "Identities covered by the node's TCI view.", float64(s.Network.TrustIdentities))
	m.gauge("pikcio_errors", "Recent errors the node holds.", float64(len(s.Errors)))

	if id := s.Identity; id != nil {
		m.gauge("pikcio_enrolled", "1 when the node is enrolled with the TIS.", b2f(id.Enrolled))
		if !id.NodeCertExpires.IsZero() {
			m.gauge("pikcio_node_cert_expiry_timestamp_seconds", "When the node certificate expires, Unix seconds.", float64(id.NodeCertExpires.Unix()))
		}
		if !id.MatryoshkaCertExpires.IsZero() {
			m.gauge("pikcio_matryoshka_cert_expiry_timestamp_seconds", "When the Matryoshka certificate expires, Unix seconds.", float64(id.MatryoshkaCertExpires.Unix()))
		}
		m.gauge("pikcio_contacts", "Contacts in the local store.", float64(id.Contacts))
		if id.Score != nil {
			m.gauge("pikcio_tci_score", "The user's own TCI, 0 to 100.", float64(*id.Score))
		}
	}

	if c := s.Client; c != nil {
		p := c.Pool
		m.gauge("pikcio_client_ready", "1 when the client has built a circuit.", b2f(c.Ready))
		m.gauge("pikcio_build_timeout_seconds", "The learned circuit build timeout.", c.BuildTimeout)
		m.gauge("pikcio_circuits", "Open circuits of the client.", float64(p.Circuits))
		m.gauge("pikcio_circuits_clean", "Prebuilt circuits not used yet.", float64(p.Clean))
		m.gauge("pikcio_circuits_retired", "Circuits that take no new streams.", float64(p.Retired))
		m.gauge("pikcio_circuits_building", "Circuits being built.", float64(p.Building))
		m.gauge("pikcio_streams", "Open streams over the client's circuits.", float64(p.Streams))
		m.gauge("pikcio_isolation_groups", "Isolation groups with a circuit.", float64(p.Groups))
		m.counter("pikcio_pool_builds_total", "Circuits built since start.", p.Builds)
		m.counter("pikcio_pool_build_failures_total", "Circuit builds that failed since start.", p.BuildFailures)
		const bytesHelp = "Payload bytes carried by the client's circuits since start."
		m.counter("pikcio_circuit_bytes_total", bytesHelp, p.BytesUp, "direction", "up")
		m.counter("pikcio_circuit_bytes_total", bytesHelp, p.BytesDown, "direction", "down")
	}

	if r := s.Relay; r != nil {
		m.gauge("pikcio_relay_exit", "1 when the relay is an exit.", b2f(r.Exit))
		m.gauge("pikcio_relay_circuits", "Circuits the relay carries now.", float64(r.Circuits))
		m.counter("pikcio_relay_circuits_total", "Circuits the relay has carried since start.", r.CircuitsTotal)
		m.counter("pikcio_relay_bytes_total", "Cell bytes the relay has handled since start.", r.Bytes)
		if r.TCI != nil {
			const bandHelp = "The TCI band the TIS states for the relay's owner."
			m.gauge("pikcio_relay_tci_band", bandHelp, float64(r.TCI.Min), "bound", "min")
			m.gauge("pikcio_relay_tci_band", bandHelp, float64(r.TCI.Max), "bound", "max")
		}
	}

	if n := len(s.Throughput); n > 0 {
		last := s.Throughput[n-1]
		const help = "Traffic of the last second sampled."
		m.gauge("pikcio_throughput_bytes_per_second", help, float64(last.Up), "direction", "up")
		m.gauge("pikcio_throughput_bytes_per_second", help, float64(last.Down), "direction", "down")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
