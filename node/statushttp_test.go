package node

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

var hostCases = []struct {
	host string
	ok   bool
}{
	{"localhost", true},
	{"localhost:7080", true},
	{"LocalHost:7080", true},
	{"localhost.:7080", true},
	{"127.0.0.1", true},
	{"127.0.0.1:7080", true},
	{"127.1.2.3:80", true},
	{"[::1]:7080", true},
	{"[::1]", true},
	{"::1", true}, // unbracketed, but still only the loopback
	{"[::ffff:127.0.0.1]:7080", true},
	{"", false},
	{"evil.example", false},
	{"evil.example:7080", false},
	{"localhost.evil.example", false},
	{"127.0.0.1.nip.io:7080", false},
	{"127.0.0.1:7080:1", false},
	{"127.0.0.1:", false},
	{"127.0.0.1:99999", false},
	{"127.0.0.1:+80", false},
	{"0.0.0.0:7080", false},
	{"192.168.1.10:7080", false},
	{"[fe80::1%lo]:7080", false},
	{"[::]:7080", false},
	{"2130706433:7080", false}, // 127.0.0.1 as a number: not an IP literal to Go
	{"localhost:7080/x", false},
}

func TestLoopbackHost(t *testing.T) {
	for _, tc := range hostCases {
		t.Run(tc.host, func(t *testing.T) {
			if got := loopbackHost(tc.host); got != tc.ok {
				t.Fatalf("loopbackHost(%q) = %v, want %v", tc.host, got, tc.ok)
			}
		})
	}
}

// FuzzLoopbackHost: whatever the Host header, an accepted one names
// localhost or a loopback address literally.
func FuzzLoopbackHost(f *testing.F) {
	for _, tc := range hostCases {
		f.Add(tc.host)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if !loopbackHost(h) {
			return
		}
		// Some reading of h as host, [host], host:port or [host]:port
		// must give localhost or a loopback IP literal.
		cands := []string{h, strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")}
		if host, _, err := net.SplitHostPort(h); err == nil {
			cands = append(cands, host)
		}
		for _, c := range cands {
			if l := strings.ToLower(c); l == "localhost" || l == "localhost." {
				return
			}
			if a, err := netip.ParseAddr(c); err == nil && a.Zone() == "" && a.Unmap().IsLoopback() {
				return
			}
		}
		t.Fatalf("accepted Host %q", h)
	})
}

func TestStatusHandler(t *testing.T) {
	st := Status{
		PeerID: "12D3KooWtest",
		Roles:  []string{"client"},
		Client: &ClientStatus{
			Ready: true,
			Circuits: []CircuitStatus{{
				Hops: []HopStatus{{"aaaaaaaa", "guard"}, {"bbbbbbbb", "middle"}, {"<script>", "exit"}},
			}},
		},
		Relay: &RelayStatus{Exit: true, ExitPolicy: []string{"accept 127.0.0.1:*"}},
	}
	h := newStatusHandler(func() Status { return st })
	cases := []struct {
		name, method, target, host string
		code                       int
		contains                   string
	}{
		{"page", "GET", "/", "127.0.0.1:7080", 200, "aaaaaaaa</code> (guard) &rarr; <code>bbbbbbbb"},
		{"page escapes", "GET", "/", "localhost", 200, "&lt;script&gt;"},
		{"api", "GET", "/api/status", "[::1]:7080", 200, `"peer_id": "12D3KooWtest"`},
		{"head", "HEAD", "/", "localhost", 200, ""},
		{"rebinding", "GET", "/api/status", "attacker.example", 403, "Forbidden"},
		{"rebinding page", "GET", "/", "attacker.example:7080", 403, "Forbidden"},
		{"post", "POST", "/api/status", "localhost", 405, ""},
		{"unknown path", "GET", "/nothing", "localhost", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Host = tc.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Fatalf("body lacks %q:\n%s", tc.contains, w.Body)
			}
			if strings.Contains(w.Body.String(), "<script") {
				t.Fatalf("body has a script:\n%s", w.Body)
			}
			if w.Header().Get("X-Frame-Options") != "DENY" {
				t.Fatalf("headers %v", w.Header())
			}
		})
	}
	req := httptest.NewRequest("GET", "/api/status", nil)
	req.Host = "localhost"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var got Status
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Client.Circuits) != 1 || got.Client.Circuits[0].Hops[2].Role != "exit" {
		t.Fatalf("decoded %+v", got.Client)
	}
	if w.Result().Header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", w.Result().Header.Get("Content-Type"))
	}
}

func TestHumanBytes(t *testing.T) {
	cases := []struct {
		n    uint64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {3 << 20, "3.0 MiB"}, {5 << 30, "5.0 GiB"}}
	for _, tc := range cases {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
