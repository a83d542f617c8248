package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestAPIStatus(t *testing.T) {
	want := clientStatus(3)
	const dest = "secret-destination.example:443"
	tests := []struct {
		name     string
		query    string
		withDest bool
	}{
		{"default", "", false},
		{"destinations", "?destinations=1", true},
		{"destinations off", "?destinations=0", false},
		{"destinations other value", "?destinations=true", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, &fixedSource{first: want})
			resp, body := get(t, srv.URL+"/api/status"+tt.query)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var got Status
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			exp := (&fixedSource{first: want}).Status(tt.withDest)
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("decoded status differs:\n got %+v\nwant %+v", got, exp)
			}
			if strings.Contains(body, dest) != tt.withDest {
				t.Fatalf("destination in body = %v, want %v", strings.Contains(body, dest), tt.withDest)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		want   map[string]float64 // name{labels} -> value
		absent []string
	}{
		{
			name:   "client and relay",
			status: clientStatus(3),
			want: map[string]float64{
				`pikcio_info{version="0.9.0-test"}`:                    1,
				"pikcio_uptime_seconds":                                5400,
				"pikcio_joined":                                        1,
				"pikcio_circuits":                                      3,
				"pikcio_streams":                                       5,
				`pikcio_circuit_bytes_total{direction="up"}`:           123456,
				`pikcio_circuit_bytes_total{direction="down"}`:         9876543,
				"pikcio_relays_known":                                  42,
				"pikcio_exits_known":                                   7,
				"pikcio_guards":                                        2,
				"pikcio_dht_peers":                                     17,
				"pikcio_trust_identities":                              120,
				"pikcio_relay_circuits":                                3,
				"pikcio_relay_circuits_total":                          88,
				"pikcio_relay_bytes_total":                             55 << 20,
				`pikcio_relay_tci_band{bound="min"}`:                   60,
				`pikcio_relay_tci_band{bound="max"}`:                   79,
				"pikcio_pool_builds_total":                             31,
				"pikcio_pool_build_failures_total":                     3,
				"pikcio_isolation_groups":                              2,
				"pikcio_errors":                                        2,
				"pikcio_enrolled":                                      1,
				"pikcio_tci_score":                                     73,
				"pikcio_contacts":                                      4,
				"pikcio_node_cert_expiry_timestamp_seconds":            float64(testNow.Unix() + 30*86400),
				`pikcio_throughput_bytes_per_second{direction="up"}`:   11900,
				`pikcio_throughput_bytes_per_second{direction="down"}`: 3000 * (119 % 17),
			},
		},
		{
			name:   "relay only",
			status: relayStatus(),
			want: map[string]float64{
				"pikcio_relay_exit":           1,
				"pikcio_relay_circuits":       6,
				"pikcio_relay_circuits_total": 1234,
				"pikcio_relay_bytes_total":    7 << 30,
				"pikcio_errors":               0,
			},
			absent: []string{"pikcio_circuits", "pikcio_circuit_bytes_total", "pikcio_enrolled", "pikcio_pool_builds_total"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, &fixedSource{first: tt.status})
			resp, body := get(t, srv.URL+"/metrics")
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
				t.Fatalf("Content-Type %q", ct)
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			fams, err := p.TextToMetricFamilies(strings.NewReader(body))
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, body)
			}
			got := map[string]float64{}
			for name, f := range fams {
				if !strings.HasPrefix(name, "pikcio_") || f.GetHelp() == "" {
					t.Errorf("family %q: want the pikcio_ prefix and a HELP line", name)
				}
				for _, m := range f.GetMetric() {
					key := name
					var labels []string
					for _, l := range m.GetLabel() {
						if l.GetName() != "direction" && l.GetName() != "bound" && l.GetName() != "version" {
							t.Errorf("%s: unexpected label %q", name, l.GetName())
						}
						labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
					}
					if len(labels) > 0 {
						key += "{" + strings.Join(labels, ",") + "}"
					}
					switch {
					case m.Gauge != nil:
						got[key] = m.GetGauge().GetValue()
					case m.Counter != nil:
						got[key] = m.GetCounter().GetValue()
					default:
						t.Errorf("%s: neither gauge nor counter", key)
					}
				}
			}
			for k, v := range tt.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			for _, name := range tt.absent {
				if _, ok := fams[name]; ok {
					t.Errorf("%s present on a node without that role", name)
				}
			}
			if strings.Contains(body, "12D3Koo") || strings.Contains(body, "secret-destination") {
				t.Fatal("metrics name a peer or a destination")
			}
		})
	}
}

func TestMetricsEscaping(t *testing.T) {
	s := relayStatus()
	s.Version = "v1 \"quoted\" back\\slash\nnewline"
	srv := newServer(t, &fixedSource{first: s})
	_, body := get(t, srv.URL+"/metrics")
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := fams["pikcio_info"].GetMetric()[0].GetLabel()[0].GetValue(); got != s.Version {
		t.Fatalf("version label %q, want %q", got, s.Version)
	}
}

func TestPAC(t *testing.T) {
	tests := []struct {
		name  string
		socks string
		want  string // the address in the script, "" for 404
	}{
		{"loopback", "127.0.0.1:1080", "127.0.0.1:1080"},
		{"localhost", "localhost:9050", "localhost:9050"},
		{"ipv6 loopback", "[::1]:1080", "[::1]:1080"},
		{"any ipv4", "0.0.0.0:1080", "127.0.0.1:1080"},
		{"any ipv6", "[::]:1080", "[::1]:1080"},
		{"lan address", "192.168.1.2:1080", "192.168.1.2:1080"},
		{"no socks", "", ""},
		{"port 0", "127.0.0.1:0", ""},
		{"name", "evil\";x:1080", ""},
		{"no port", "127.0.0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clientStatus(1)
			s.Client.SOCKS = tt.socks
			srv := newServer(t, &fixedSource{first: s})
			resp, body := get(t, srv.URL+"/proxy.pac")
			if tt.want == "" {
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("status %d, want 404", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ns-proxy-autoconfig" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			ret := `return "SOCKS5 ` + tt.want + `";`
			if !strings.Contains(body, "function FindProxyForURL(url, host)") || !strings.Contains(body, ret) {
				t.Fatalf("PAC lacks %q:\n%s", ret, body)
			}
			if strings.Contains(body, "DIRECT") || strings.Count(body, "return") != 1 {
				t.Fatalf("PAC may bypass the proxy:\n%s", body)
			}
		})
	}
	t.Run("relay only", func(t *testing.T) {
		srv := newServer(t, &fixedSource{first: relayStatus()})
		if resp, _ := get(t, srv.URL+"/proxy.pac"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
}

func TestPageWithoutScript(t *testing.T) {
	st := clientStatus(4)
	const dest = "secret-destination.example:443"
	srv := newServer(t, &fixedSource{first: st})
	resp, page := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	want := []string{
		`data-rendered="server"`,
		`<noscript><meta http-equiv="refresh" content="10"></noscript>`,
		`<script src="/assets/app.js" defer></script>`,
		`<link rel="stylesheet" href="/assets/style.css">`,
		shortID(st.PeerID), `data-copy="` + st.PeerID + `"`, `hidden>Copy</button>`,
		shortID(st.Identity.NodeID), shortID(st.Identity.MatryoshkaID),
		"2026-12-22 12:00 UTC (in 30 d 0 h)", // node certificate
		"enrolled", ">73<",
		"40 for 2 guards, 448 more this period", "refill: TIS unreachable", // admission tokens
		`<span id="relays-known">42</span>`, `<span id="exits-known">7</span>`,
		"17 peers in the routing table",
		"<code>127.0.0.1:1080</code>", `<a href="/proxy.pac">`,
		`<form method="post" action="/new-identity"`,
		"isolation group 1", "isolation group 2", "isolation group 3", "prebuilt",
		"TCI 60–79", "Relayed</dt><dd>55.0 MiB",
		"exit refused the connection", "1 min 0 s ago", "extend timed out",
		`<polyline class="up" points="`,
		`<input type="checkbox" name="destinations" value="1" id="show-dest">`,
	}
	for _, c := range st.Client.Circuits {
		want = append(want, `data-circuit="`+itoa(c.ID)+`"`, "Circuit "+itoa(c.ID), c.State)
		for _, h := range c.Hops {
			chip := h.Role + " · <code>" + shortID(h.ID) + "</code> · " + bandText(h.TCI)
			if h.Contact != "" {
				chip += " · " + h.Contact
			}
			want = append(want, `data-hop="`+h.ID+`"`, `data-tci="`+bandAttr(h.TCI)+`"`, chip+"</li>")
		}
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	for _, bad := range []string{dest, "secret-destination", "<script>", " onclick=", " style="} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}

	t.Run("destinations", func(t *testing.T) {
		_, page := get(t, srv.URL+"/?destinations=1")
		if !strings.Contains(page, "<code>"+dest+"</code>") || !strings.Contains(page, `id="show-dest" checked>`) {
			t.Fatal("page with ?destinations=1 lacks the destination or the checked switch")
		}
	})
}

func TestPageRelayOnly(t *testing.T) {
	srv := newServer(t, &fixedSource{first: relayStatus()})
	_, page := get(t, srv.URL+"/")
	for _, w := range []string{`<h2>Exit relay</h2>`, "6 relayed now, 1234 since start", "7.0 GiB", "TCI 80–100",
		"<code>accept *:443</code>", "never for whom", "No recent errors.", "no TIS configured"} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	for _, bad := range []string{`id="client"`, "New identity", `class="circuit"`} {
		if strings.Contains(page, bad) {
			t.Errorf("relay page holds %q", bad)
		}
	}
}

func TestAssets(t *testing.T) {
	srv := newServer(t, &fixedSource{first: relayStatus()})
	tests := []struct {
		path, ctype string
		code        int
	}{
		{"/assets/app.js", "text/javascript; charset=utf-8", 200},
		{"/assets/style.css", "text/css; charset=utf-8", 200},
		{"/assets/index.html", "", 404},
		{"/assets/", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.code || (tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype) {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			body = strings.ReplaceAll(body, "http://www.w3.org/2000/svg", "") // a namespace, not a load
			if tt.code == 200 && (len(body) < 100 || strings.Contains(body, "http://") || strings.Contains(body, "https://")) {
				t.Fatalf("asset is empty or refers to another site")
			}
		})
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
