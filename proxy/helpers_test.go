package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// Every test runs with a resolver that fails and counts any DNS query: no
// test may ask the machine's resolver, and the proxy never resolves names.
var (
	dnsQueries atomic.Int32
	dnsProbe   atomic.Bool // set while a test checks that the guard works
	dnsProbed  atomic.Int32
)

func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if dnsProbe.Load() {
				dnsProbed.Add(1)
			} else {
				dnsQueries.Add(1)
			}
			return nil, errors.New("test: DNS queries are forbidden")
		},
	}
	if os.Getenv("PROXY_TEST_DEBUG") != "" {
		logrus.SetLevel(logrus.DebugLevel)
	} else {
		logrus.SetOutput(io.Discard)
	}
	code := m.Run()
	if n := dnsQueries.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d DNS queries were attempted during the tests\n", n)
		code = 1
	}
	os.Exit(code)
}

// checkLeaks fails t if, once its other cleanups ran, goroutines remain above
// the count at the call. Call it first in a test.
func checkLeaks(t testing.TB) { testutil.NoExtraGoroutines(t) }

// backend is a local HTTP server on 127.0.0.1 that records the headers it
// received.
type backend struct {
	*httptest.Server
	port    uint16
	mu      sync.Mutex
	headers []http.Header
	block   chan struct{} // /block waits on it
}

const body1K = "0123456789abcdef"

func oneKiB() string { return strings.Repeat(body1K, 64) }

func newBackend(t testing.TB) *backend {
	b := &backend{block: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	t.Cleanup(func() { close(b.block) })
	b.port = portOf(t, b.Listener.Addr())
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	h := r.Header.Clone()
	h.Set("X-Seen-Host", r.Host)
	b.headers = append(b.headers, h)
	b.mu.Unlock()
	switch r.URL.Path {
	case "/block":
		_, _ = io.WriteString(w, "start\n")
		w.(http.Flusher).Flush()
		select {
		case <-b.block:
		case <-r.Context().Done():
		}
	default:
		_, _ = io.WriteString(w, oneKiB())
	}
}

func (b *backend) lastHeaders(t testing.TB) http.Header {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.headers) == 0 {
		t.Fatal("backend got no request")
	}
	return b.headers[len(b.headers)-1]
}

func portOf(t testing.TB, a net.Addr) uint16 {
	t.Helper()
	_, ps, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}

// env is a pool over fake circuits and a server with both front ends on
// 127.0.0.1.
type env struct {
	builder   *proxytest.Builder
	pool      *proxy.Pool
	server    *proxy.Server
	socksAddr string
	httpAddr  string
}

func newEnv(t testing.TB, popts proxy.PoolOptions, sopts proxy.ServerOptions) *env {
	t.Helper()
	e := &env{builder: proxytest.NewBuilder()}
	e.pool = proxy.NewPool(e.builder.Build, popts)
	e.pool.Start()
	t.Cleanup(func() { _ = e.pool.Close() })
	e.server = proxy.NewServer(e.pool, sopts)
	t.Cleanup(func() { _ = e.server.Close() })
	sa, err := e.server.ListenSOCKS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ha, err := e.server.ListenHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.socksAddr, e.httpAddr = sa.String(), ha.String()
	return e
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(t, l.Addr())
	_ = l.Close()
	return p
}

func dialTimeout(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// waitFor polls cond for up to 15 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, what, cond)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
