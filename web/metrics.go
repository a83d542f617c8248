package web

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// metricsContentType is the Prometheus text exposition format 0.0.4.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// serveMetrics writes a snapshot (without destinations) as Prometheus
// metrics. No label carries a destination or a peer ID.
func (h *handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var m metricWriter
	writeMetrics(&m, h.src.Status(false))
	w.Header().Set("Content-Type", metricsContentType)
	w.Header().Set("Content-Length", strconv.Itoa(m.buf.Len()))
	_, _ = w.Write(m.buf.Bytes())
}

func writeMetrics(m *metricWriter, s Status) {
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
		m.family("pikcio_circuit_bytes_total", "counter", "Payload bytes carried by the client's circuits since start.")
		m.sampleUint("pikcio_circuit_bytes_total", p.BytesUp, "direction", "up")
		m.sampleUint("pikcio_circuit_bytes_total", p.BytesDown, "direction", "down")
	}

	if r := s.Relay; r != nil {
		m.gauge("pikcio_relay_exit", "1 when the relay is an exit.", b2f(r.Exit))
		m.gauge("pikcio_relay_circuits", "Circuits the relay carries now.", float64(r.Circuits))
		m.counter("pikcio_relay_circuits_total", "Circuits the relay has carried since start.", r.CircuitsTotal)
		m.counter("pikcio_relay_bytes_total", "Cell bytes the relay has handled since start.", r.Bytes)
		if r.TCI != nil {
			m.family("pikcio_relay_tci_band", "gauge", "The TCI band the TIS states for the relay's owner.")
			m.sample("pikcio_relay_tci_band", float64(r.TCI.Min), "bound", "min")
			m.sample("pikcio_relay_tci_band", float64(r.TCI.Max), "bound", "max")
		}
	}

	if n := len(s.Throughput); n > 0 {
		last := s.Throughput[n-1]
		m.family("pikcio_throughput_bytes_per_second", "gauge", "Traffic of the last second sampled.")
		m.sampleUint("pikcio_throughput_bytes_per_second", last.Up, "direction", "up")
		m.sampleUint("pikcio_throughput_bytes_per_second", last.Down, "direction", "down")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricWriter writes the text exposition format: a # HELP and a # TYPE
// line per family, then its samples.
type metricWriter struct {
	buf bytes.Buffer
}

func (m *metricWriter) family(name, typ, help string) {
	m.buf.WriteString("# HELP " + name + " " + helpEscaper.Replace(help) + "\n")
	m.buf.WriteString("# TYPE " + name + " " + typ + "\n")
}

func (m *metricWriter) gauge(name, help string, v float64, labels ...string) {
	m.family(name, "gauge", help)
	m.sample(name, v, labels...)
}

func (m *metricWriter) counter(name, help string, v uint64) {
	m.family(name, "counter", help)
	m.sampleUint(name, v)
}

// sample writes one line; labels are name, value pairs.
func (m *metricWriter) sample(name string, v float64, labels ...string) {
	m.line(name, strconv.FormatFloat(v, 'g', -1, 64), labels)
}

func (m *metricWriter) sampleUint(name string, v uint64, labels ...string) {
	m.line(name, strconv.FormatUint(v, 10), labels)
}

func (m *metricWriter) line(name, value string, labels []string) {
	m.buf.WriteString(name)
	if len(labels) > 0 {
		m.buf.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.buf.WriteByte(',')
			}
			m.buf.WriteString(labels[i] + `="` + labelEscaper.Replace(labels[i+1]) + `"`)
		}
		m.buf.WriteByte('}')
	}
	m.buf.WriteString(" " + value + "\n")
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)
