package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// socksGet fetches url through the SOCKS server with golang.org/x/net/proxy.
func socksGet(t *testing.T, socksAddr string, auth *xproxy.Auth, url string) string {
	t.Helper()
	d, err := xproxy.SOCKS5("tcp", socksAddr, auth, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSOCKSClients(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b4 := newBackend(t)

	// An IPv6 backend on [::1], if the machine has it.
	var b6port uint16
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil {
		s := httptest.NewUnstartedServer(b4.Config.Handler)
		s.Listener = l
		s.Start()
		t.Cleanup(s.Close)
		b6port = portOf(t, l.Addr())
	}

	p4 := strconv.Itoa(int(b4.port))
	cases := []struct {
		name     string
		auth     *xproxy.Auth
		url      string
		wantDest string // what the exit was asked for
		needIPv6 bool
	}{
		{"noauth/ipv4", nil, "http://127.0.0.1:" + p4 + "/", "127.0.0.1:" + p4, false},
		{"noauth/domain", nil, "http://" + proxytest.ExitOnlyName + ":" + p4 + "/", proxytest.ExitOnlyName + ":" + p4, false},
		{"userpass/ipv4", &xproxy.Auth{User: "alice", Password: "pw"}, "http://127.0.0.1:" + p4 + "/", "127.0.0.1:" + p4, false},
		{"userpass/domain", &xproxy.Auth{User: "alice", Password: "pw"}, "http://" + proxytest.ExitOnlyName + ":" + p4 + "/", proxytest.ExitOnlyName + ":" + p4, false},
		{"noauth/ipv6", nil, "http://[::1]:" + strconv.Itoa(int(b6port)) + "/", "[::1]:" + strconv.Itoa(int(b6port)), true},
		{"userpass/ipv6", &xproxy.Auth{User: "bob", Password: "x"}, "http://[::1]:" + strconv.Itoa(int(b6port)) + "/", "[::1]:" + strconv.Itoa(int(b6port)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needIPv6 && b6port == 0 {
				t.Skip("cannot bind [::1]")
			}
			before := countOpened(e.builder, tc.wantDest)
			if got := socksGet(t, e.socksAddr, tc.auth, tc.url); got != oneKiB() {
				t.Fatalf("body %q", got)
			}
			if n := countOpened(e.builder, tc.wantDest) - before; n != 1 {
				t.Fatalf("exit asked for %q %d times, want once", tc.wantDest, n)
			}
		})
	}
}

// countOpened counts the stream opens to dest on all circuits.
func countOpened(b *proxytest.Builder, dest string) int {
	n := 0
	for _, c := range b.Circuits() {
		for _, d := range c.Opened() {
			if d == dest {
				n++
			}
		}
	}
	return n
}

// socksRequest does a raw SOCKS5 exchange: greeting with methods, optional
// RFC 1929 auth, then req (VER CMD RSV ATYP ADDR PORT). It returns the
// reply's REP byte and the connection.
func socksRequest(t *testing.T, addr string, user, pass string, req []byte) (byte, net.Conn) {
	t.Helper()
	c := dialTimeout(t, addr)
	r := bufio.NewReader(c)
	methods := []byte{5, 1, 0}
	if user != "" {
		methods = []byte{5, 2, 0, 2}
	}
	if _, err := c.Write(methods); err != nil {
		t.Fatal(err)
	}
	sel := make([]byte, 2)
	if _, err := io.ReadFull(r, sel); err != nil {
		t.Fatalf("method selection: %v", err)
	}
	if user != "" {
		if sel[1] != 2 {
			t.Fatalf("server chose method %d, want username/password", sel[1])
		}
		msg := append([]byte{1, byte(len(user))}, user...)
		msg = append(msg, byte(len(pass)))
		msg = append(msg, pass...)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, sel); err != nil || sel[1] != 0 {
			t.Fatalf("auth reply %v %v", sel, err)
		}
	} else if sel[1] != 0 {
		t.Fatalf("server chose method %d, want no auth", sel[1])
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 10)
	if _, err := io.ReadFull(r, reply); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if reply[0] != 5 {
		t.Fatalf("reply version %d", reply[0])
	}
	return reply[1], &bufConn{Conn: c, r: r}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func connectName(cmd byte, name string, port uint16) []byte {
	b := append([]byte{5, cmd, 0, 3, byte(len(name))}, name...)
	return append(b, byte(port>>8), byte(port))
}

func connectIPv4(cmd byte, ip [4]byte, port uint16) []byte {
	return []byte{5, cmd, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(port >> 8), byte(port)}
}

func TestSOCKSReplyCodes(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{ConnectTimeout: 300 * time.Millisecond}, proxy.ServerOptions{})
	b := newBackend(t)
	e.builder.FailHost("policy.test", endreason.ErrPolicy)
	e.builder.FailHost("unreachable.test", endreason.ErrUnreachable)
	e.builder.FailHost("slow.test", endreason.ErrTimeout)
	e.builder.FailHost("misc.test", endreason.ErrMisc)
	e.builder.StallHost("stall.test")
	closed := closedPort(t)
	lo := [4]byte{127, 0, 0, 1}

	cases := []struct {
		name string
		req  []byte
		want byte
	}{
		{"success", connectIPv4(1, lo, b.port), 0x00},
		{"policy", connectName(1, "policy.test", 80), 0x02},
		{"unreachable", connectName(1, "unreachable.test", 80), 0x04},
		{"name not resolved", connectName(1, "nowhere.test", 80), 0x04},
		{"empty name", connectName(1, "", 80), 0x04},
		{"refused", connectIPv4(1, lo, closed), 0x05},
		{"refused by name", connectName(1, proxytest.ExitOnlyName, closed), 0x05},
		{"exit timeout", connectName(1, "slow.test", 80), 0x06},
		{"connect deadline", connectName(1, "stall.test", 80), 0x06},
		{"other failure", connectName(1, "misc.test", 80), 0x01},
		{"bind", connectIPv4(2, lo, b.port), 0x07},
		{"udp associate", connectIPv4(3, lo, 0), 0x07},
		{"unknown command", connectIPv4(9, lo, b.port), 0x07},
		{"address type 5", []byte{5, 1, 0, 5, 127, 0, 0, 1, 0, 80}, 0x08},
	}
	for _, tc := range cases {
		for _, user := range []string{"", "u"} {
			name := tc.name
			if user != "" {
				name += "/userpass"
			}
			t.Run(name, func(t *testing.T) {
				rep, c := socksRequest(t, e.socksAddr, user, "p", tc.req)
				if rep != tc.want {
					t.Fatalf("REP %#02x, want %#02x", rep, tc.want)
				}
				if rep != 0 {
					// A failure reply ends the connection.
					if _, err := c.Read(make([]byte, 1)); err == nil {
						t.Fatal("connection still open after a failure reply")
					}
				}
			})
		}
	}

	t.Run("circuit failure", func(t *testing.T) {
		// A circuit failure on both the circuit and its replacement.
		e.builder.FailHost("broken.test", errors.New("link lost"))
		rep, _ := socksRequest(t, e.socksAddr, "", "", connectName(1, "broken.test", 80))
		if rep != 0x01 {
			t.Fatalf("REP %#02x, want 0x01", rep)
		}
	})
}

func TestSOCKSSuccessReplyHidesLocalAddress(t *testing.T) {
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	c := dialTimeout(t, e.socksAddr)
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(connectIPv4(1, [4]byte{127, 0, 0, 1}, b.port)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 12)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	want := []byte{5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0} // selection, then reply with 0.0.0.0:0
	if !slices.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	// The tunnel works after pipelined greeting and request.
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(c)
	if err != nil || !strings.HasSuffix(string(resp), oneKiB()) {
		t.Fatalf("response %q, %v", resp, err)
	}
}

func TestHTTPOnSOCKSPort(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})

	for _, req := range []string{
		"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"HEAD / HTTP/1.0\r\n\r\n",
	} {
		method, _, _ := strings.Cut(req, " ")
		t.Run("raw/"+method, func(t *testing.T) {
			c := dialTimeout(t, e.socksAddr)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v (the server must close cleanly, not reset)", err)
			}
			s := string(resp)
			if !strings.HasPrefix(s, "HTTP/1.0 501 ") || !strings.Contains(s, "SOCKS") {
				t.Fatalf("response %q", s)
			}
			if len(resp) > 512 {
				t.Fatalf("response is %d bytes, want a short one", len(resp))
			}
		})
	}

	t.Run("net/http client", func(t *testing.T) {
		tr := &http.Transport{Proxy: http.ProxyURL(mustURL(t, "http://"+e.socksAddr))}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://example.test/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "not an HTTP proxy") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

func TestSOCKSRefusesOtherProtocols(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"socks4", []byte{4, 1, 0, 80, 127, 0, 0, 1, 'u', 0}},
		{"socks4a", append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, "example.test\x00"...)},
		{"tls", []byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTimeout(t, e.socksAddr)
			if _, err := c.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if tc.name != "tls" && err != nil {
				t.Fatalf("want a clean close, got %v", err)
			}
			if len(got) != 0 {
				t.Fatalf("got %q, want nothing", got)
			}
		})
	}
}

// No DNS query leaves the process: a name reaches the exit as it was sent.
func TestSOCKSNeverResolves(t *testing.T) {
	checkLeaks(t)
	// The DNS guard works: a real lookup reaches it.
	dnsProbe.Store(true)
	_, err := net.DefaultResolver.LookupHost(context.Background(), proxytest.ExitOnlyName)
	dnsProbe.Store(false)
	if err == nil || dnsProbed.Load() == 0 {
		t.Fatalf("DNS guard not reached (err %v)", err)
	}

	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	queries := dnsQueries.Load()
	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"
	if got := socksGet(t, e.socksAddr, nil, url); got != oneKiB() {
		t.Fatalf("body %q", got)
	}
	if n := dnsQueries.Load() - queries; n != 0 {
		t.Fatalf("%d DNS queries", n)
	}
	var asked []string
	for _, c := range e.builder.Circuits() {
		asked = append(asked, c.Opened()...)
	}
	if want := proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)); !slices.Contains(asked, want) {
		t.Fatalf("exit asked for %v, want %s", asked, want)
	}
}

func TestSOCKSHandshakeTimeout(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{HandshakeTimeout: 200 * time.Millisecond})
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"half greeting", []byte{5}},
		{"greeting only", []byte{5, 1, 0}},
		{"half request", []byte{5, 1, 0, 5, 1, 0, 3, 20, 'a'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTimeout(t, e.socksAddr)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, _ = io.ReadAll(c) // method selection, if any, then EOF
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
}

func TestSOCKSIsolation(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{Prebuilt: -1}, proxy.ServerOptions{})
	b := newBackend(t)
	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"
	alice := &xproxy.Auth{User: "alice", Password: "1"}
	bob := &xproxy.Auth{User: "bob", Password: "1"}
	alice2 := &xproxy.Auth{User: "alice", Password: "2"}
	steps := []struct {
		auth *xproxy.Auth
		want int // circuit ID (build order)
	}{
		{alice, 1}, {bob, 2}, {alice, 1}, {nil, 3}, {nil, 3}, {bob, 2}, {alice2, 4},
	}
	want := map[int]int{} // circuit ID -> opens
	for i, s := range steps {
		socksGet(t, e.socksAddr, s.auth, url)
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
	if n := e.builder.Builds(); n != 4 {
		t.Fatalf("%d builds, want 4", n)
	}
	groups := map[int]bool{}
	for _, ci := range e.pool.Snapshot() {
		groups[ci.Group] = true
	}
	if len(groups) != 4 {
		t.Fatalf("snapshot groups %v, want 4 distinct", groups)
	}
}

func TestSOCKSConcurrent(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"
	auths := []*xproxy.Auth{nil, {User: "a", Password: "1"}, {User: "b", Password: "1"}, {User: "c", Password: "1"}}
	done := make(chan string, 40)
	for i := range cap(done) {
		go func() {
			d, err := xproxy.SOCKS5("tcp", e.socksAddr, auths[i%len(auths)], xproxy.Direct)
			if err != nil {
				done <- err.Error()
				return
			}
			tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
			if err != nil {
				done <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- string(body)
		}()
	}
	for range cap(done) {
		if got := <-done; got != oneKiB() {
			t.Errorf("got %q", got)
		}
	}
	if g := e.pool.Stats().Groups; g != len(auths) {
		t.Errorf("%d isolation groups, want %d", g, len(auths))
	}
}

func TestSOCKSShutdown(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{ConnectTimeout: time.Minute}, proxy.ServerOptions{})
	b := newBackend(t)
	e.builder.StallHost("stall.test")

	// An established, idle tunnel (blocked in the library's relay).
	rep, tunnel := socksRequest(t, e.socksAddr, "", "", connectIPv4(1, [4]byte{127, 0, 0, 1}, b.port))
	if rep != 0 {
		t.Fatalf("REP %d", rep)
	}
	// A client blocked in the library's handshake.
	half := dialTimeout(t, e.socksAddr)
	if _, err := half.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(half, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	// A client whose dial is in progress.
	dialing := dialTimeout(t, e.socksAddr)
	if _, err := dialing.Write(append([]byte{5, 1, 0}, connectName(1, "stall.test", 80)...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled dial", func() bool {
		for _, c := range e.builder.Circuits() {
			if slices.Contains(c.Opened(), "stall.test:80") {
				return true
			}
		}
		return false
	})

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
	for name, c := range map[string]net.Conn{"tunnel": tunnel, "handshake": half, "dialing": dialing} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); isTimeout(err) {
			t.Errorf("%s: still open after Close", name)
		}
	}
	if _, err := net.DialTimeout("tcp", e.socksAddr, time.Second); err == nil {
		t.Error("still accepting after Close")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
