package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAnnounceThroughForwarders runs relays as separate processes that
// listen on one port and announce another (--announce), where a forwarder
// of the test passes connections on, as a port forward in front of a relay
// would. The relays print and publish the forwarder's address, and a
// download through the client's SOCKS proxy crosses the forwarders.
func TestAnnounceThroughForwarders(t *testing.T) {
	base := t.TempDir()
	boot := start(t, "bootstrap", "relay", "--data", filepath.Join(base, "boot"))
	bootAddr := boot.waitLine(t, "relay address: ", startTimeout)

	var fwds []*forwarder
	for i := range 3 {
		listen := freePort(t)
		fwd := newForwarder(t, listen)
		fwds = append(fwds, fwd)
		lhost, lport, _ := net.SplitHostPort(listen)
		fhost, fport, _ := net.SplitHostPort(fwd.addr())
		args := []string{"relay", "--data", filepath.Join(base, fmt.Sprintf("relay-%d", i)), "--bootstrap", bootAddr,
			"--listen", "/ip4/" + lhost + "/tcp/" + lport,
			"--announce", "/ip4/" + fhost + "/tcp/" + fport}
		if i >= 1 {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:*")
		}
		r := start(t, fmt.Sprintf("relay-%d", i), args...)
		got := r.waitLine(t, "relay address: ", startTimeout)
		if !strings.HasPrefix(got, "/ip4/"+fhost+"/tcp/"+fport+"/p2p/") {
			t.Fatalf("relay %d prints %q, want the forwarder's address /ip4/%s/tcp/%s", i, got, fhost, fport)
		}
		if strings.Contains(r.out(), "/tcp/"+lport+"/") {
			t.Fatalf("relay %d prints its listen port %s:\n%s", i, lport, r.out())
		}
	}

	socks := freePort(t)
	client := start(t, "client", "client", "--data", filepath.Join(base, "client"),
		"--bootstrap", bootAddr, "--allow-same-subnet", "--socks", socks, "--http", "", "--status", "")
	client.waitLine(t, "circuit ready", 90*time.Second)

	url, body := fileServer(t, 1<<20)
	got := curl(t, "--socks5-hostname", socks, url)
	checkBody(t, "download through forwarded relays", got, body)
	// Every exit is behind a forwarder, so the download crossed one.
	var carried int64
	for _, f := range fwds {
		carried += f.bytes.Load()
	}
	if carried < int64(len(body)) {
		t.Fatalf("the forwarders carried %d bytes, want at least the %d of the download", carried, len(body))
	}
}

// forwarder passes TCP connections from its own loopback port to target.
type forwarder struct {
	l      net.Listener
	target string
	bytes  atomic.Int64
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{l: l, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Go(f.serve)
	t.Cleanup(f.close)
	return f
}

func (f *forwarder) addr() string { return f.l.Addr().String() }

func (f *forwarder) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.pass(c) })
	}
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) pass(c net.Conn) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", f.target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !f.track(c) || !f.track(up) {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(countWriter{up, &f.bytes}, c)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	_, err = io.Copy(countWriter{c, &f.bytes}, up)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		_ = c.Close()
	}
	_ = c.(*net.TCPConn).CloseWrite()
	<-done
}

func (f *forwarder) close() {
	_ = f.l.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// countWriter counts what it writes as it goes: libp2p connections stay
// open.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
