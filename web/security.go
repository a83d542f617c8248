package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// contentSecurityPolicy lets the page load only its own script, style
// sheet and images, run no inline script or handler, post forms only to
// itself and be framed by nobody.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// csrfHeader and csrfField carry the token of a POST: the header from the
// page's script, the hidden field from its form.
const (
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"
)

// secure sets the headers every answer carries and refuses requests whose
// Host is not the loopback (DNS rebinding).
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !loopbackHost(r.Host) {
			http.Error(w, "403 Forbidden: the status page answers only to localhost or a loopback address.", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header value names this machine
// through the loopback: localhost (in any ASCII case, with or without a
// trailing dot), an IPv4 address in 127.0.0.0/8, or [::1] or an
// IPv4-mapped loopback address in brackets, each with or without a valid
// port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if !validPort(port) {
			return false
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	// Brackets go with IPv6 addresses and only with them.
	bracketed := strings.HasPrefix(hostport, "[")
	// ASCII folding only: strings.EqualFold would take "localhoſt" (with
	// U+017F, which folds to "s") for localhost.
	if h := asciiLower(host); !bracketed && (h == "localhost" || h == "localhost.") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || a.Is6() != bracketed {
		return false
	}
	return a.Unmap().IsLoopback()
}

// validPort reports whether p is a decimal port number, 0 to 65535.
func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// asciiLower lowercases the ASCII letters of s and leaves every other
// byte alone.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// canonicalHost is a Host or origin host:port in the form used to compare
// them: lowercase, without a trailing dot on localhost and without the
// default port 80.
func canonicalHost(hostport string) string {
	h := asciiLower(hostport)
	h = strings.TrimSuffix(h, ":80")
	if strings.HasPrefix(h, "localhost.") {
		h = "localhost" + h[len("localhost."):]
	}
	return h
}

// sameOrigin reports whether a POST comes from the page itself: no
// cross-site or same-site fetch metadata, and no Origin header or one that
// is http:// and the request's (loopback) Host.
func sameOrigin(r *http.Request) bool {
	switch asciiLower(r.Header.Get("Sec-Fetch-Site")) {
	case "cross-site", "same-site":
		return false
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return loopbackHost(u.Host) && canonicalHost(u.Host) == canonicalHost(r.Host)
}

// csrfToken is a handler's secret that the page hands back with a POST.
type csrfToken string

// newCSRFToken returns 32 random bytes, base64url-encoded.
func newCSRFToken() csrfToken {
	var b [32]byte
	// crypto/rand.Read never returns an error (it panics if the system's
	// generator fails).
	_, _ = rand.Read(b[:])
	return csrfToken(base64.RawURLEncoding.EncodeToString(b[:]))
}

// valid compares got with the token in constant time.
func (t csrfToken) valid(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(t)) == 1
}
