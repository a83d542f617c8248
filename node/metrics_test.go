package node_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsEndpoint parses the node's /metrics with the Prometheus text
// parser: the circuit build-time histogram has the client's builds, the
// time-to-first-byte histogram the stream just made, counters are counters,
// go-libp2p's collectors are there, and no label value is a peer ID or a
// destination.
func TestMetricsEndpoint(t *testing.T) {
	n := startNet(t, 3, 1, nil)

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	dest := l.Addr().String()
	resp, err := testutil.SOCKSClient(n.Client.SOCKSAddr().String()).Get("http://" + dest + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.Client.StatusAddr().String()+"/metrics", nil)
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}

	for name, min := range map[string]uint64{"pikcio_circuit_build_seconds": 1, "pikcio_stream_first_byte_seconds": 1} {
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("%s missing or not a histogram: %v", name, f)
		}
		if c := f.GetMetric()[0].GetHistogram().GetSampleCount(); c < min {
			t.Errorf("%s has %d samples, want at least %d", name, c, min)
		}
	}
	for _, name := range []string{"pikcio_pool_builds_total", "pikcio_circuit_bytes_total"} {
		if f := fams[name]; f == nil || f.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s missing or not a counter", name)
		}
	}
	libp2p := map[string]bool{}
	for name := range fams {
		for _, prefix := range []string{"libp2p_rcmgr_", "libp2p_swarm_"} {
			if strings.HasPrefix(name, prefix) {
				libp2p[prefix] = true
			}
		}
	}
	if !libp2p["libp2p_rcmgr_"] || !libp2p["libp2p_swarm_"] {
		t.Errorf("go-libp2p collectors: %v, want the resource manager's and the swarm's", libp2p)
	}
	ids := []string{n.Client.ID().String()}
	for _, r := range n.Relays {
		ids = append(ids, r.ID().String())
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				v := lp.GetValue()
				if strings.Contains(v, dest) || strings.Contains(v, "127.0.0.1:") {
					t.Errorf("%s: label %s=%q carries a destination", name, lp.GetName(), v)
				}
				for _, id := range ids {
					if strings.Contains(v, id) || strings.HasPrefix(v, "12D3Koo") {
						t.Errorf("%s: label %s=%q carries a peer ID", name, lp.GetName(), v)
					}
				}
			}
		}
	}
}
