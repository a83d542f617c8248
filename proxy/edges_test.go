package proxy_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// A client may send its first bytes (a TLS ClientHello, here a request) in
// the same segment as the CONNECT request: they reach the destination, on
// the HTTP port and on the SOCKS port.
func TestConnectKeepsPipelinedBytes(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	dest := "127.0.0.1:" + strconv.Itoa(int(b.port))
	for _, port := range []struct{ name, addr string }{{"http port", e.httpAddr}, {"socks port", e.socksAddr}} {
		t.Run(port.name, func(t *testing.T) {
			c := dialTimeout(t, port.addr)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := "CONNECT " + dest + " HTTP/1.1\r\nHost: " + dest + "\r\n\r\n" +
				"GET / HTTP/1.0\r\nHost: " + dest + "\r\n\r\n"
			if _, err := io.WriteString(c, msg); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, &http.Request{Method: http.MethodConnect})
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("CONNECT: %v %v", resp, err)
			}
			inner, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("the request sent behind the CONNECT got no answer: %v", err)
			}
			body, _ := io.ReadAll(inner.Body)
			if string(body) != oneKiB() {
				t.Fatalf("body %q", body)
			}
		})
	}
}

// A CONNECT on the SOCKS port that a web page could have made through a
// browser (an Origin header, a Host header for another authority) is
// refused before any dial.
func TestConnectOnSOCKSPortChecks(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	dest := proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port))
	for _, tc := range []struct {
		name    string
		headers string
		status  int
	}{
		{"no Host", "", http.StatusOK},
		{"Host", "Host: " + dest + "\r\n", http.StatusOK},
		{"Host in other case", "Host: " + strings.ToUpper(dest) + "\r\n", http.StatusOK},
		{"foreign Host", "Host: 127.0.0.1:" + strconv.Itoa(int(b.port)) + "\r\n", http.StatusForbidden},
		{"two Hosts", "Host: " + dest + "\r\nHost: " + dest + "\r\n", http.StatusForbidden},
		{"Origin", "Host: " + dest + "\r\nOrigin: http://evil.test\r\n", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countOpened(e.builder, dest)
			c := dialTimeout(t, e.socksAddr)
			if _, err := io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\n"+tc.headers+"\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			want := 0
			if tc.status == http.StatusOK {
				want = 1
			}
			if got := countOpened(e.builder, dest) - before; got != want {
				t.Fatalf("%d opens at the exit, want %d", got, want)
			}
		})
	}
	t.Run("Origin on the HTTP port", func(t *testing.T) {
		c := dialTimeout(t, e.httpAddr)
		if _, err := io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\nOrigin: http://evil.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v %v, want 403", resp, err)
		}
	})
}

// The SOCKS and HTTP listeners never share an isolation group: requests
// without credentials on each get different circuits (Tor never mixes
// listeners).
func TestListenersDoNotShareCircuits(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{Prebuilt: -1}, proxy.ServerOptions{})
	b := newBackend(t)
	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"
	socksGet(t, e.socksAddr, nil, url)
	resp, err := httpProxyClient(t, "http://"+e.httpAddr, nil).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var used []int
	for _, c := range e.builder.Circuits() {
		if len(c.Opened()) > 0 {
			used = append(used, c.ID)
		}
	}
	if len(used) != 2 {
		t.Fatalf("circuits used %v, want two", used)
	}
}

// RESOLVE and RESOLVE_PTR fail (general failure) when the circuits cannot
// resolve at their exit (these test circuits cannot); they are never
// resolved locally. node's TestSOCKSResolve resolves through real circuits.
func TestSOCKSResolveNeedsAnExit(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	queries := dnsQueries.Load()
	for _, req := range [][]byte{
		connectName(0xf0, proxytest.ExitOnlyName, 0),
		connectIPv4(0xf1, [4]byte{127, 0, 0, 1}, 0),
	} {
		if rep, _ := socksRequest(t, e.socksAddr, "", "", req); rep != 0x01 {
			t.Fatalf("REP %#02x, want 0x01", rep)
		}
	}
	if n := dnsQueries.Load() - queries; n != 0 {
		t.Fatalf("%d DNS queries", n)
	}
}
