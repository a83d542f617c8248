// Package testutil holds the helpers the tests of several packages share:
// loopback servers and libp2p hosts that a test's end closes, a SOCKS5
// client (SOCKSDial, SOCKSClient), polling for a condition, and
// goroutine-leak checks. Everything listens on 127.0.0.1
// only.
package testutil

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pikcio matches every goroutine that runs, or was started by, pikcio's
// code (CheckNoLeaks).
const Pikcio = "github.com/pikcio/pikcio/"

// WaitFor polls cond every 10 ms until it holds; after timeout the test
// fails, naming what it waited for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Serve runs handle for every connection to a TCP listener on 127.0.0.1
// until the test ends, which closes the listener and every connection
// and waits for the handlers. accepted counts the connections so far.
func Serve(t testing.TB, handle func(net.Conn)) (addr *net.TCPAddr, accepted func() int) {
	t.Helper()
	return ServeOn(t, "127.0.0.1:0", handle)
}

// ServeOn is Serve on listen, a loopback host:port ("[::1]:0",
// "127.0.0.2:0").
func ServeOn(t testing.TB, listen string, handle func(net.Conn)) (addr *net.TCPAddr, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
		n     int
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			n++
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// EchoServer echoes every connection on 127.0.0.1 and half-closes after
// EOF (Serve).
func EchoServer(t testing.TB) (port uint16, accepted func() int) {
	t.Helper()
	addr, accepted := Serve(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	})
	return uint16(addr.Port), accepted
}

// SilentServer accepts connections on 127.0.0.1 and never answers: a
// stalled server. It returns host:port.
func SilentServer(t testing.TB) string {
	t.Helper()
	addr, _ := Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	return addr.String()
}

// SyncBuffer is an io.Writer that a test reads while others write to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset forgets what was written.
func (s *SyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// RandomBytes returns n random bytes.
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// FileServer serves size random bytes at /file on 127.0.0.1 (with
// ranges and Content-Length), and a small HTML page at /, until the test
// ends.
func FileServer(t testing.TB, size int) (url string, body []byte) {
	t.Helper()
	body = RandomBytes(t, size)
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(body))
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html><head><title>pikcio test</title></head><body><h1 id="greeting">Hello through three hops</h1></body></html>`))
	})
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL + "/file", body
}

// CheckNoLeaks waits up to 15 s until no goroutine whose stack (frames or
// "created by" line) contains match is left, other than tests' own
// runners, and fails t listing those that are.
func CheckNoLeaks(t testing.TB, match string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := goroutines(match)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines matching %q left:\n%s", len(left), match, strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NoExtraGoroutines fails t if, once its other cleanups ran (call it
// first), more goroutines run than when it was called, after waiting up
// to 15 s for them to end. It is stricter than NoLeaks: it also counts
// library goroutines (net/http's, libp2p's) that pikcio's code left.
func NoExtraGoroutines(t testing.TB) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(15 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d goroutines, %d before\n%s", n, base, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// NoLeaks runs CheckNoLeaks(t, match) at the test's end, after the
// cleanups registered later: call it first in a test.
func NoLeaks(t testing.TB, match string) {
	t.Cleanup(func() { CheckNoLeaks(t, match) })
}

func goroutines(match string) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, match) &&
			!strings.Contains(g, "internal/testutil.goroutines") &&
			!strings.Contains(g, "testing.tRunner") &&
			!strings.Contains(g, "testing.(*T).Run") &&
			!strings.Contains(g, "testing.(*B).run") &&
			!strings.Contains(g, "testing.runFuzzing") {
			out = append(out, g)
		}
	}
	return out
}
