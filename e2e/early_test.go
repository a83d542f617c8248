package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pikcio/pikcio/proxy"
)

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return p
}

// earlySOCKS connects through the SOCKS port at addr to 127.0.0.1:port
// and checks that the reply is an early success.
func earlySOCKS(t *testing.T, addr string, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	req := []byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var rep [12]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		t.Fatal(err)
	}
	if rep[3] != 0 {
		t.Fatalf("reply code 0x%02x, want an early success", rep[3])
	}
	return c
}

// TestEarlySOCKSRefused: with SOCKSEarlySuccess the SOCKS port replies
// success before the exit has connected (optimistic data), and a refused connect then resets the
// application's connection: an error, not an empty answer.
func TestEarlySOCKSRefused(t *testing.T) {
	n := newNetwork(t, proxy.PoolOptions{})
	n.waitPrebuilt(t)
	srv := proxy.NewServer(n.pool, proxy.ServerOptions{SOCKSEarlySuccess: true})
	t.Cleanup(func() { _ = srv.Close() })
	a, err := srv.ListenSOCKS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := earlySOCKS(t, a.String(), closedPort(t))
	_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a refused connect: %v, want a connection reset", err)
	}
	if st := n.pool.Stats(); st.Replays != 0 || st.Retries != 0 {
		t.Fatalf("a destination's refusal was retried: %+v", st)
	}
}

// TestHTTPPlainRefused: a plain HTTP request goes with optimistic data, and
// a refused connect still gives the precise 502.
func TestHTTPPlainRefused(t *testing.T) {
	n := newNetwork(t, proxy.PoolOptions{})
	n.waitPrebuilt(t)
	pu, _ := url.Parse("http://" + n.http)
	cl := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 30 * time.Second}
	resp, err := cl.Get("http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "refused") {
		t.Fatalf("%d %q, want 502 saying the destination refused", resp.StatusCode, body)
	}
}
