package proxy_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

func httpProxyClient(t *testing.T, proxyURL string, tlsConf *tls.Config) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(mustURL(t, proxyURL)), TLSClientConfig: tlsConf, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestHTTPProxyPlain(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	client := httpProxyClient(t, "http://user:secret@"+e.httpAddr, nil)

	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Via":               "1.1 client-box",
		"X-Forwarded-For":   "192.0.2.7",
		"X-Forwarded-Host":  "client.example",
		"Forwarded":         "for=192.0.2.7",
		"X-Real-Ip":         "192.0.2.7",
		"Proxy-Connection":  "keep-alive",
		"Keep-Alive":        "timeout=5",
		"Te":                "trailers",
		"Connection":        "X-Private, keep-alive",
		"X-Private":         "hop-only",
		"Upgrade":           "h2c",
		"X-Keep":            "yes",
		"Accept-Encoding":   "br",
		"Proxy-Other-Thing": "x",
	} {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != oneKiB() {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	got := b.lastHeaders(t)
	for _, k := range []string{"Via", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-Ip",
		"Proxy-Connection", "Proxy-Authorization", "Keep-Alive", "Te", "X-Private", "Upgrade"} {
		if v, ok := got[k]; ok {
			t.Errorf("destination received %s: %q", k, v)
		}
	}
	if c := got.Get("Connection"); c != "" && !strings.EqualFold(c, "close") {
		t.Errorf("destination received Connection: %q", c)
	}
	if got.Get("X-Keep") != "yes" || got.Get("Accept-Encoding") != "br" {
		t.Errorf("end-to-end headers changed: %v", got)
	}
	if got.Get("X-Seen-Host") != proxytest.ExitOnlyName+":"+strconv.Itoa(int(b.port)) {
		t.Errorf("Host %q", got.Get("X-Seen-Host"))
	}
	for k := range resp.Header {
		if k == "Via" {
			t.Errorf("response has Via")
		}
	}
}

// A request without User-Agent must not get Go's default one.
func TestHTTPProxyNoDefaultUserAgent(t *testing.T) {
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	c := dialTimeout(t, e.httpAddr)
	target := proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port))
	if _, err := io.WriteString(c, "GET http://"+target+"/ HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ua, ok := b.lastHeaders(t)["User-Agent"]; ok {
		t.Fatalf("destination received User-Agent %q", ua)
	}
}

func TestHTTPProxyConnect(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over tls "+r.Header.Get("Proxy-Authorization"))
	}))
	t.Cleanup(ts.Close)
	port := portOf(t, ts.Listener.Addr())
	tlsConf := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsConf.ServerName = "example.com" // in httptest's certificate

	client := httpProxyClient(t, "http://user:secret@"+e.httpAddr, tlsConf)
	resp, err := client.Get("https://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(port)) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "over tls " {
		t.Fatalf("body %q", body)
	}
}

// A raw CONNECT tunnel passes bytes both ways and half-closes.
func TestHTTPProxyConnectHalfClose(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	// An echo server that answers after the client's EOF.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		_, _ = c.Write(append([]byte("echo:"), b...))
	}()
	t.Cleanup(func() { <-done })

	c := dialTimeout(t, e.httpAddr)
	dest := "127.0.0.1:" + strconv.Itoa(int(portOf(t, l.Addr())))
	if _, err := io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "echo:hello" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestHTTPProxyErrors(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{ConnectTimeout: 300 * time.Millisecond}, proxy.ServerOptions{})
	e.builder.FailHost("policy.test", endreason.ErrPolicy)
	e.builder.FailHost("unreachable.test", endreason.ErrUnreachable)
	e.builder.FailHost("slow.test", endreason.ErrTimeout)
	e.builder.FailHost("misc.test", endreason.ErrMisc)
	e.builder.FailHost("broken.test", errors.New("internal circuit detail"))
	e.builder.StallHost("stall.test")
	closed := strconv.Itoa(int(closedPort(t)))

	cases := []struct {
		name, host string
		want       int
	}{
		{"policy", "policy.test:80", 502},
		{"unreachable", "unreachable.test:80", 502},
		{"not resolved", "nowhere.test:80", 502},
		{"refused", "127.0.0.1:" + closed, 502},
		{"other", "misc.test:80", 502},
		{"circuit failure", "broken.test:80", 502},
		{"exit timeout", "slow.test:80", 504},
		{"connect deadline", "stall.test:80", 504},
	}
	leaks := []string{"exit:", "exit failure", "proxytest", "internal", "circuit detail", "dial", "tcp", "stream", "context",
		".test", "127.0.0.1", "deadline exceeded", "refused by", "by exit policy"}
	check := func(t *testing.T, status int, ctype string, body []byte, want int) {
		t.Helper()
		if status != want {
			t.Fatalf("status %d, want %d (%q)", status, want, body)
		}
		if !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("Content-Type %q", ctype)
		}
		if len(body) == 0 || len(body) > 120 {
			t.Errorf("body is %d bytes: %q", len(body), body)
		}
		for _, s := range leaks {
			if strings.Contains(string(body), s) {
				t.Errorf("body %q contains %q", body, s)
			}
		}
	}
	for _, tc := range cases {
		t.Run("plain/"+tc.name, func(t *testing.T) {
			client := httpProxyClient(t, "http://"+e.httpAddr, nil)
			resp, err := client.Get("http://" + tc.host + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			check(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.want)
		})
		t.Run("connect/"+tc.name, func(t *testing.T) {
			c := dialTimeout(t, e.httpAddr)
			if _, err := io.WriteString(c, "CONNECT "+tc.host+" HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			check(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.want)
		})
	}
	t.Run("connect without port", func(t *testing.T) {
		c := dialTimeout(t, e.httpAddr)
		if _, err := io.WriteString(c, "CONNECT example.test HTTP/1.1\r\nHost: example.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("not a proxy request", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + e.httpAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check(t, resp.StatusCode, resp.Header.Get("Content-Type"), body, 400)
	})
}

func TestHTTPProxyIsolation(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{Prebuilt: -1}, proxy.ServerOptions{})
	b := newBackend(t)
	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"
	get := func(proxyUser string) {
		t.Helper()
		u := "http://" + e.httpAddr
		if proxyUser != "" {
			u = "http://" + proxyUser + "@" + e.httpAddr
		}
		resp, err := httpProxyClient(t, u, nil).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	steps := []struct {
		do   func()
		want int // circuit ID
	}{
		{func() { get("alice:1") }, 1},
		{func() { get("bob:1") }, 2},
		{func() { get("alice:1") }, 1},
		{func() { get("") }, 3},
		{func() { get("") }, 3},
		{func() { connectVia(t, e.httpAddr, "bob:1", "127.0.0.1:"+strconv.Itoa(int(b.port))) }, 2},
		// The SOCKS port never shares the HTTP port's circuits, with the
		// same credentials or without any (Tor never mixes listeners).
		{func() { socksGet(t, e.socksAddr, &xproxy.Auth{User: "alice", Password: "1"}, url) }, 4},
		{func() { socksGet(t, e.socksAddr, nil, url) }, 5},
		{func() { socksGet(t, e.socksAddr, nil, url) }, 5},
	}
	want := map[int]int{}
	for i, s := range steps {
		s.do()
		want[s.want]++
		got := map[int]int{}
		for _, c := range e.builder.Circuits() {
			if n := len(c.Opened()); n > 0 {
				got[c.ID] = n
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("step %d: opens per circuit %v, want %v", i, got, want)
		}
	}
}

// connectVia opens and closes a CONNECT tunnel with Proxy-Authorization
// Basic credentials user:pass.
func connectVia(t *testing.T, proxyAddr, userPass, dest string) {
	t.Helper()
	c := dialTimeout(t, proxyAddr)
	defer c.Close()
	auth := base64.StdEncoding.EncodeToString([]byte(userPass))
	if _, err := io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\nProxy-Authorization: Basic "+auth+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v, %v", resp, err)
	}
}

func TestHTTPProxyShutdown(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{ConnectTimeout: time.Minute}, proxy.ServerOptions{})
	b := newBackend(t)
	e.builder.StallHost("stall.test")
	target := "127.0.0.1:" + strconv.Itoa(int(b.port))

	// An idle CONNECT tunnel.
	tunnel := dialTimeout(t, e.httpAddr)
	if _, err := io.WriteString(tunnel, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	tr := bufio.NewReader(tunnel)
	if resp, err := http.ReadResponse(tr, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v, %v", resp, err)
	}
	// A plain request whose response body never ends.
	blocked := dialTimeout(t, e.httpAddr)
	if _, err := io.WriteString(blocked, "GET http://"+target+"/block HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(blocked)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v, %v", resp, err)
	}
	// A CONNECT whose dial is in progress.
	dialing := dialTimeout(t, e.httpAddr)
	if _, err := io.WriteString(dialing, "CONNECT stall.test:443 HTTP/1.1\r\nHost: stall.test:443\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// An idle keep-alive client.
	idle := dialTimeout(t, e.httpAddr)
	waitFor(t, "the stalled dial", func() bool { return countOpened(e.builder, "stall.test:443") == 1 })

	done := make(chan struct{})
	go func() {
		_ = e.server.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	for name, r := range map[string]io.Reader{"tunnel": tr, "plain": br, "dialing": dialing, "idle": idle} {
		if _, err := io.ReadAll(r); isTimeout(err) {
			t.Errorf("%s: still open after Close", name)
		}
	}
}

// A WebSocket handshake through the plain HTTP proxy keeps exactly the
// Upgrade headers it needs, and the upgraded connection relays both ways.
func TestHTTPProxyWebSocketUpgrade(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	gotReq := make(chan *http.Request, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		gotReq <- req
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nKeep-Alive: x\r\n\r\n")
		_, _ = io.Copy(c, r) // echo
	}()
	t.Cleanup(func() { <-done })

	dest := proxytest.ExitOnlyName + ":" + strconv.Itoa(int(portOf(t, l.Addr())))
	c := dialTimeout(t, e.httpAddr)
	if _, err := io.WriteString(c, "GET http://"+dest+"/ws HTTP/1.1\r\nHost: "+dest+"\r\n"+
		"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n"+
		"X-Forwarded-For: 192.0.2.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	if resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("response kept Keep-Alive")
	}
	req := <-gotReq
	if req.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(req.Header.Get("Connection"), "Upgrade") ||
		req.Header.Get("Sec-Websocket-Key") != "k" || req.Header.Get("X-Forwarded-For") != "" {
		t.Fatalf("destination got headers %v", req.Header)
	}
	if _, err := io.WriteString(c, "frame"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "frame" {
		t.Fatalf("echo %q, %v", buf, err)
	}
}
