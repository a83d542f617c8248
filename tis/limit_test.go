package tis

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "198.51.100.7:4000", "", "198.51.100.7"},
		{"direct ignores the header", "198.51.100.7:4000", "203.0.113.1", "198.51.100.7"},
		{"behind a proxy", "10.1.2.3:4000", "203.0.113.1", "203.0.113.1"},
		{"client-set entries before the proxy's are ignored", "10.1.2.3:4000", "192.0.2.66, 203.0.113.1", "203.0.113.1"},
		{"a chain of trusted proxies", "10.1.2.3:4000", "203.0.113.1, 10.9.9.9", "203.0.113.1"},
		{"garbage from a proxy", "10.1.2.3:4000", "not-an-address", "10.1.2.3"},
		{"IPv6 by /64", "[2001:db8:1:2:3:4:5:6]:4000", "", "2001:db8:1:2::/64"},
		{"IPv4-mapped", "[::ffff:198.51.100.7]:4000", "", "198.51.100.7"},
		{"IPv6 proxy", "[::1]:4000", "2001:db8::9", "2001:db8::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientAddr(r, proxies); got != tc.want {
				t.Fatalf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzClientAddr: any peer address and X-Forwarded-For give an answer, and
// a peer that is no trusted proxy is never overridden by the header.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.1.2.3:4000", "203.0.113.1, 10.9.9.9")
	f.Add("198.51.100.7:4000", "203.0.113.1")
	f.Add("[::1]:1", ",,,")
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := clientAddr(r, proxies)
		direct := clientAddr(&http.Request{RemoteAddr: remote, Header: http.Header{}}, proxies)
		if a, err := netip.ParseAddrPort(remote); err == nil && !proxies[0].Contains(a.Addr().Unmap()) && got != direct {
			t.Fatalf("untrusted peer %q overridden by %q: %q", remote, xff, got)
		}
	})
}

func TestKeyedLimiterForgetsAndCaps(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newKeyedLimiter(1, 2, 3)
	for i, want := range []bool{true, true, false} {
		if got := l.take("a", now); got != want {
			t.Fatalf("take %d: %v", i, got)
		}
	}
	// Full again after burst/rate: forgotten.
	if !l.take("a", now.Add(3*time.Second)) || len(l.m) != 1 {
		t.Fatalf("after idle: %d keys", len(l.m))
	}
	// Past maxKeys, new keys share one overflow bucket.
	l.take("b", now.Add(3*time.Second))
	l.take("c", now.Add(3*time.Second))
	for i, want := range []bool{true, true, false} {
		if got := l.take("new-"+string(rune('a'+i)), now.Add(3*time.Second)); got != want {
			t.Fatalf("overflow take %d: %v", i, got)
		}
	}
	if len(l.m) > 3 {
		t.Fatalf("%d keys, cap 3", len(l.m))
	}
}
