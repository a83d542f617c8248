package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/proxy"
)

func needCmd(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// curl runs curl with no proxy settings from the environment.
func curl(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := needCmd(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "--fail", "--max-time", "50", "--noproxy", ""}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// TestCurl fetches a 4 MiB file through the circuits with curl in the three
// ways a person would: SOCKS5 with remote names, the HTTP proxy, and a
// CONNECT tunnel through the HTTP proxy.
func TestCurl(t *testing.T) {
	n := newNetwork(t, proxy.PoolOptions{})
	port, body := fileServer(t, 4<<20)
	tests := []struct {
		name string
		args []string
	}{
		{"socks5-hostname", []string{"--socks5-hostname", n.socks, "http://localhost:" + port + "/file"}},
		{"socks5-hostname, name only the exit knows", []string{"--socks5-hostname", n.socks, "http://" + onlyAtExit + ":" + port + "/file"}},
		{"http proxy", []string{"-x", "http://" + n.http, "http://localhost:" + port + "/file"}},
		{"http proxy CONNECT", []string{"-p", "-x", "http://" + n.http, "http://localhost:" + port + "/file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := n.exitBytes()
			got := curl(t, tc.args...)
			if !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes, want the %d-byte file", len(got), len(body))
			}
			if moved := n.exitBytes() - before; moved < uint64(len(body)) {
				t.Fatalf("exit relay moved %d bytes for a %d-byte file: not through the circuit", moved, len(body))
			}
		})
	}
}

// TestChromium loads a page in a real headless Chromium whose proxy is the
// SOCKS port, loopback included, and checks the DOM it rendered.
func TestChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		needCmd(t, "chromium")
	}
	n := newNetwork(t, proxy.PoolOptions{})
	port, _ := fileServer(t, 1)
	before := n.exitBytes()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile := filepath.Join(t.TempDir(), "profile")
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile,
		"--proxy-server=socks5://"+n.socks, "--proxy-bypass-list=<-loopback>",
		"--virtual-time-budget=10000", "--dump-dom",
		"http://"+onlyAtExit+":"+port+"/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(stderr.String(), 2000))
	}
	if !strings.Contains(string(out), `<h1 id="greeting">Hello through three hops</h1>`) {
		t.Fatalf("page not rendered through the proxy; DOM:\n%s\nstderr:\n%s", tail(string(out), 2000), tail(stderr.String(), 2000))
	}
	if n.exitBytes() == before {
		t.Fatal("the exit relay carried nothing: Chromium did not use the circuit")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestXNetProxy uses golang.org/x/net/proxy as an independent SOCKS5
// client, with and without credentials, to a name and an IP literal.
func TestXNetProxy(t *testing.T) {
	n := newNetwork(t, proxy.PoolOptions{})
	port, body := fileServer(t, 256<<10)
	for _, tc := range []struct {
		name string
		auth *xproxy.Auth
		host string
	}{
		{"no auth, IPv4", nil, "127.0.0.1"},
		{"user/pass, name", &xproxy.Auth{User: "alice", Password: "x"}, onlyAtExit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := xproxy.SOCKS5("tcp", n.socks, tc.auth, &net.Dialer{Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &http.Transport{Dial: d.Dial}, Timeout: 30 * time.Second}
			resp, err := c.Get(fmt.Sprintf("http://%s:%s/file", tc.host, port))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes (%v), want %d", len(got), err, len(body))
			}
		})
	}
}

// socksConnect does a raw SOCKS5 CONNECT to a domain name and returns the
// reply code.
func socksConnect(t *testing.T, addr, host string, port int) byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(45 * time.Second))
	req := []byte{5, 1, 0, 5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = append(req, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var rep [4]byte
	if _, err := io.ReadFull(c, rep[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return rep[1]
}

// TestReplyCodesThroughCircuits checks the SOCKS reply codes for failures
// that the real exit reports through real circuits.
func TestReplyCodesThroughCircuits(t *testing.T) {
	n := newNetwork(t, proxy.PoolOptions{})
	// The precise codes need the SOCKS port to wait for the exit's answer,
	// which it does unless SOCKSEarlySuccess.
	srv := proxy.NewServer(n.pool, proxy.ServerOptions{})
	t.Cleanup(func() { _ = srv.Close() })
	a, err := srv.ListenSOCKS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	socksAddr := a.String()
	port, _ := fileServer(t, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	var p int
	fmt.Sscan(port, &p)
	for _, tc := range []struct {
		name string
		host string
		port int
		want byte
	}{
		{"success", onlyAtExit, p, 0x00},
		{"exit policy", "10.1.2.3", 80, 0x02},
		{"name not resolved at the exit", "nowhere.test", 80, 0x04},
		{"connection refused", "127.0.0.1", closed, 0x05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := socksConnect(t, socksAddr, tc.host, tc.port); got != tc.want {
				t.Fatalf("reply 0x%02x, want 0x%02x", got, tc.want)
			}
		})
	}
}

// TestIsolationThroughCircuits: different SOCKS credentials get different
// circuits, the same credentials share one.
func TestIsolationThroughCircuits(t *testing.T) {
	n := newNetwork(t, proxy.PoolOptions{Prebuilt: -1})
	port, _ := fileServer(t, 1)
	get := func(user string) {
		d, err := xproxy.SOCKS5("tcp", n.socks, &xproxy.Auth{User: user, Password: "p"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	get("alice")
	get("alice")
	if b := n.builds.Load(); b != 1 {
		t.Fatalf("same credentials built %d circuits, want 1", b)
	}
	get("bob")
	if b := n.builds.Load(); b != 2 {
		t.Fatalf("second credentials: %d circuits built, want 2", b)
	}
	if g := n.pool.Stats().Groups; g != 2 {
		t.Fatalf("%d isolation groups, want 2", g)
	}
}
