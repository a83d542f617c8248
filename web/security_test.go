package web

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var hostTests = []struct {
	host string
	ok   bool
}{
	{"localhost", true},
	{"LOCALHOST", true},
	{"LocalHost.", true},
	{"localhost:7080", true},
	{"localhost.:7080", true},
	{"localhost:0", true},
	{"localhost:65535", true},
	{"127.0.0.1", true},
	{"127.0.0.1:7080", true},
	{"127.9.8.7:80", true},
	{"[::1]", true},
	{"[::1]:7080", true},
	{"[::ffff:127.0.0.1]:7080", true},
	{"", false},
	{"localhost:", false},
	{"localhost:65536", false},
	{"localhost:123456", false},
	{"localhost:+80", false},
	{"localhost:8o", false},
	{"localhost..", false},
	{"localhost.localdomain", false},
	{"localhoſt", false}, // U+017F folds to "s" in Unicode, not in ASCII
	{"evil.example", false},
	{"evil.example:7080", false},
	{"127.0.0.1.nip.io", false},
	{"localhost.evil.example", false},
	{"10.0.0.1:7080", false},
	{"0.0.0.0:7080", false},
	{"[::]:7080", false},
	{"[fe80::1%lo]:7080", false},
	{"[::1%lo]", false},
	{"::1", false}, // IPv6 needs brackets in a Host
	{"[localhost]", false},
	{"[localhost]:80", false},
	{"[127.0.0.1]:80", false},
	{"2130706433", false},
	{"127.1", false},
	{"0177.0.0.1", false},
	{"[127.0.0.1]", false},
	{"localhost:7080:7080", false},
	{"user@localhost", false},
}

func TestLoopbackHost(t *testing.T) {
	for _, tt := range hostTests {
		t.Run(tt.host, func(t *testing.T) {
			if got := loopbackHost(tt.host); got != tt.ok {
				t.Fatalf("loopbackHost(%q) = %v, want %v", tt.host, got, tt.ok)
			}
		})
	}
}

// TestHostHeader sends the Host headers over real HTTP: every route
// refuses a foreign host.
func TestHostHeader(t *testing.T) {
	src := &fixedSource{first: clientStatus(2)}
	srv := newServer(t, src)
	for _, tt := range hostTests {
		if tt.host == "" || strings.ContainsAny(tt.host, "%@ ") || !utf8.ValidString(tt.host) {
			continue // not a Host a client library sends as such
		}
		for _, path := range []string{"/", "/api/status", "/metrics", "/proxy.pac", "/assets/app.js"} {
			t.Run(tt.host+path, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = tt.host
				resp, _ := do(t, req)
				want := http.StatusOK
				if !tt.ok {
					want = http.StatusForbidden
				}
				if resp.StatusCode != want {
					t.Fatalf("Host %q %s: status %d, want %d", tt.host, path, resp.StatusCode, want)
				}
				checkSecurityHeaders(t, resp)
			})
		}
	}
}

func checkSecurityHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", resp.Request.URL.Path, k, got, v)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
		"frame-ancestors 'none'", "form-action 'self'", "default-src 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("%s: CSP %q lacks %q", resp.Request.URL.Path, csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows inline code", csp)
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	srv := newServer(t, &fixedSource{first: relayStatus()})
	for _, path := range []string{"/", "/api/status", "/metrics", "/proxy.pac", "/nothing", "/assets/style.css", "/assets/index.html"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := get(t, srv.URL+path)
			checkSecurityHeaders(t, resp)
		})
	}
}

func TestNewIdentity(t *testing.T) {
	const good = "GOOD" // replaced by the handler's token
	tests := []struct {
		name      string
		header    string // X-CSRF-Token
		form      string // csrf field
		origin    string // "HOST" is replaced by the server's host:port
		fetchSite string
		result    bool // what NewIdentity answers
		code      int
		called    bool
	}{
		{name: "script", header: good, origin: "http://HOST", fetchSite: "same-origin", result: true, code: 200, called: true},
		{name: "script without origin", header: good, result: true, code: 200, called: true},
		{name: "script no client role", header: good, origin: "http://HOST", result: false, code: 409, called: true},
		{name: "form", form: good, origin: "http://HOST", fetchSite: "same-origin", result: true, code: 303, called: true},
		{name: "form without fetch metadata", form: good, result: true, code: 303, called: true},
		{name: "form typed by user", form: good, fetchSite: "none", result: true, code: 303, called: true},
		{name: "no token", code: 403},
		{name: "wrong header token", header: "not-the-token", code: 403},
		{name: "wrong form token", form: "not-the-token", code: 403},
		{name: "token prefix", form: "PREFIX", code: 403},
		{name: "cross-site", header: good, fetchSite: "cross-site", code: 403},
		{name: "same-site", form: good, fetchSite: "same-site", code: 403},
		{name: "foreign origin", header: good, origin: "http://evil.example", code: 403},
		{name: "rebound origin", form: good, origin: "http://evil.example:PORT", code: 403},
		{name: "null origin", form: good, origin: "null", code: 403},
		{name: "https origin", header: good, origin: "https://HOST", code: 403},
		{name: "other loopback port", header: good, origin: "http://127.0.0.1:1", code: 403},
		{name: "origin with path", header: good, origin: "http://HOST/x", code: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fixedSource{first: clientStatus(1), newIDResult: tt.result}
			srv := newServer(t, src)
			token := pageToken(t, srv.URL)
			u, _ := url.Parse(srv.URL)
			fill := func(v string) string {
				v = strings.ReplaceAll(v, good, token)
				v = strings.ReplaceAll(v, "PREFIX", token[:len(token)-1])
				v = strings.ReplaceAll(v, "HOST", u.Host)
				return strings.ReplaceAll(v, "PORT", u.Port())
			}
			var body string
			if tt.form != "" {
				body = url.Values{csrfField: {fill(tt.form)}}.Encode()
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/new-identity", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.header != "" {
				req.Header.Set(csrfHeader, fill(tt.header))
			}
			if tt.origin != "" {
				req.Header.Set("Origin", fill(tt.origin))
			}
			if tt.fetchSite != "" {
				req.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			resp, got := do(t, req)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.code, got)
			}
			if n := src.newIdentityCalls(); (n == 1) != tt.called || n > 1 {
				t.Fatalf("NewIdentity called %d times, want called=%v", n, tt.called)
			}
			switch tt.code {
			case http.StatusSeeOther:
				if loc := resp.Header.Get("Location"); loc != "/" {
					t.Fatalf("Location = %q, want /", loc)
				}
			case http.StatusOK, http.StatusConflict:
				var res newIdentityResult
				if err := json.Unmarshal([]byte(got), &res); err != nil || res.OK != tt.result {
					t.Fatalf("answer %q (%v), want ok=%v", got, err, tt.result)
				}
			}
			checkSecurityHeaders(t, resp)
		})
	}
}

// TestTokenPerHandler checks that two handlers do not share a token.
func TestTokenPerHandler(t *testing.T) {
	a := pageToken(t, newServer(t, &fixedSource{first: clientStatus(0)}).URL)
	b := pageToken(t, newServer(t, &fixedSource{first: clientStatus(0)}).URL)
	if a == b || len(a) < 40 {
		t.Fatalf("tokens %q and %q: want two different random tokens", a, b)
	}
}

var tokenRE = regexp.MustCompile(`<meta name="pikcio-csrf" content="([^"]+)">`)

// pageToken reads the CSRF token from the page, as its script does.
func pageToken(t testing.TB, base string) string {
	t.Helper()
	_, page := get(t, base+"/")
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	if !strings.Contains(page, `<input type="hidden" name="csrf" value="`+m[1]+`">`) {
		t.Fatal("the page's form lacks the token")
	}
	return m[1]
}

func FuzzLoopbackHost(f *testing.F) {
	for _, tt := range hostTests {
		f.Add(tt.host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		ok := loopbackHost(host)
		if !ok {
			return
		}
		// An accepted Host is plain ASCII of a few kinds of characters...
		for _, c := range []byte(host) {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte(".:[]", c) >= 0) {
				t.Fatalf("accepted %q with byte %q", host, c)
			}
		}
		// ...whose host part is localhost or a loopback address.
		h := host
		if hh, port, err := net.SplitHostPort(host); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				t.Fatalf("accepted %q with port %q", host, port)
			}
			h = hh
		}
		bracketed := strings.HasPrefix(host, "[")
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if l := strings.ToLower(h); !bracketed && (l == "localhost" || l == "localhost.") {
			return
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Unmap().IsLoopback() {
			t.Fatalf("accepted %q: host %q is not loopback (%v)", host, h, err)
		}
		// Case does not matter.
		if !loopbackHost(strings.ToUpper(host)) || !loopbackHost(strings.ToLower(host)) {
			t.Fatalf("accepted %q but not in another case", host)
		}
	})
}
