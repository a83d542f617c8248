package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pikcio/pikcio/internal/endreason"
)

var proxyAuthTests = []struct {
	in, want string
}{
	{"", ""},
	{"Basic YWxpY2U6cHc=", credentialKey("alice", "pw")},
	{"basic   YWxpY2U6cHc=  ", credentialKey("alice", "pw")},
	{"BASIC YWxpY2U6cDp3", credentialKey("alice", "p:w")},
	{"Basic YWxpY2U=", credentialKey("alice", "")},
	{"Basic Og==", credentialKey("", "")},
	{"Basic !!!", "raw:Basic !!!"},
	{"Bearer tok", "raw:Bearer tok"},
	{"Basic", "raw:Basic"},
}

func TestProxyAuthKey(t *testing.T) {
	for _, tc := range proxyAuthTests {
		if got := proxyAuthKey(tc.in); got != tc.want {
			t.Errorf("proxyAuthKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if credentialKey("a", "bc") == credentialKey("ab", "c") {
		t.Error("credential keys collide")
	}
}

func FuzzProxyAuthKey(f *testing.F) {
	for _, tc := range proxyAuthTests {
		f.Add(tc.in)
	}
	f.Add("Basic " + "dTpw")
	f.Fuzz(func(t *testing.T, in string) {
		k := proxyAuthKey(in)
		if (in == "") != (k == "") {
			t.Fatalf("%q -> %q: only no header is the default group", in, k)
		}
		if k != "" && !strings.HasPrefix(k, "up:") && k != "raw:"+in {
			t.Fatalf("%q -> %q", in, k)
		}
		// Basic credentials round-trip.
		if u, p, ok := (&http.Request{Header: http.Header{"Authorization": {in}}}).BasicAuth(); ok {
			if k != credentialKey(u, p) {
				t.Fatalf("%q -> %q, want the key of %q:%q", in, k, u, p)
			}
		}
	})
}

var destTests = []struct {
	in   string
	host string
	port uint16
	ok   bool
}{
	{"example.com:80", "example.com", 80, true},
	{"127.0.0.1:443", "127.0.0.1", 443, true},
	{"[::1]:8080", "::1", 8080, true},
	{"[fe80::1%lo]:1", "fe80::1%lo", 1, true},
	{"a:0", "a", 0, true},
	{"a:65535", "a", 65535, true},
	{"a:65536", "", 0, false},
	{"a:-1", "", 0, false},
	{"a:http", "", 0, false},
	{"example.com", "", 0, false},
	{":80", "", 0, false},
	{"a b:80", "", 0, false},
	{"a\x00b:80", "", 0, false},
	{"\xff:80", "", 0, false},
	{strings.Repeat("a", 256) + ":80", "", 0, false},
	{strings.Repeat("a", 255) + ":80", strings.Repeat("a", 255), 80, true},
}

func TestSplitDest(t *testing.T) {
	for _, tc := range destTests {
		host, port, err := splitDest(tc.in)
		if (err == nil) != tc.ok || host != tc.host || port != tc.port {
			t.Errorf("splitDest(%q) = %q, %d, %v", tc.in, host, port, err)
		}
		if err != nil && !errors.Is(err, errBadDestination) {
			t.Errorf("splitDest(%q): %v is not errBadDestination", tc.in, err)
		}
	}
}

func FuzzSplitDest(f *testing.F) {
	for _, tc := range destTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, port, err := splitDest(in)
		if err != nil {
			return
		}
		if host == "" || len(host) > 255 || strings.ContainsAny(host, " \x00\r\n") {
			t.Fatalf("%q -> bad host %q", in, host)
		}
		if h, _, err := splitDest(fmt.Sprintf("[%s]:%d", host, port)); strings.Contains(host, ":") && (err != nil || h != host) {
			t.Fatalf("%q does not round-trip: %q %v", in, h, err)
		}
	})
}

func TestStripHopHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"hop and identifying", http.Header{
			"Connection": {"keep-alive, X-A"}, "X-A": {"1"}, "Keep-Alive": {"5"}, "Te": {"trailers"},
			"Trailer": {"X"}, "Upgrade": {"h2c"}, "Via": {"1.1 x"}, "X-Forwarded-For": {"192.0.2.1"},
			"Forwarded": {"for=x"}, "X-Real-Ip": {"192.0.2.1"}, "Proxy-Authorization": {"Basic x"},
			"Proxy-Connection": {"keep-alive"}, "Accept": {"*/*"},
		}, http.Header{"Accept": {"*/*"}}},
		{"websocket", http.Header{
			"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"},
		}, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}}},
		{"connection names a header twice", http.Header{
			"Connection": {"X-A", "x-b,  ,X-A"}, "X-A": {"1"}, "X-B": {"2"}, "X-C": {"3"},
		}, http.Header{"X-C": {"3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			stripHopHeaders(h)
			if fmt.Sprint(h) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", h, tc.want)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err    error
		socks  byte
		status int
	}{
		{endreason.ErrPolicy, 0x02, 502},
		{endreason.ErrUnreachable, 0x04, 502},
		{endreason.ErrResolve, 0x04, 502},
		{errBadDestination, 0x04, 502},
		{endreason.ErrRefused, 0x05, 502},
		{endreason.ErrTimeout, 0x06, 504},
		{context.DeadlineExceeded, 0x06, 504},
		{endreason.ErrMisc, 0x01, 502},
		{endreason.ErrNotExit, 0x01, 502},
		{ErrTooManyCircuits, 0x01, 502},
		{io.ErrUnexpectedEOF, 0x01, 502},
		{context.Canceled, 0x01, 502},
	} {
		wrapped := fmt.Errorf("open stream to x: %w", tc.err)
		status, body := httpFailure(wrapped)
		if got := socksReply(wrapped); got != tc.socks || status != tc.status {
			t.Errorf("%v: socks %#02x status %d, want %#02x %d", tc.err, got, status, tc.socks, tc.status)
		}
		if strings.Contains(body, wrapped.Error()) || strings.Contains(body, "open stream") {
			t.Errorf("%v: body %q has the error text", tc.err, body)
		}
	}
}
