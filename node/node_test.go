package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
)

// fileServer serves size random bytes at /file on 127.0.0.1.
func fileServer(t testing.TB, size int) (url string, body []byte) {
	return testutil.FileServer(t, size)
}

func get(t testing.TB, c *http.Client, url string) ([]byte, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// TestNetwork runs relays and a client in one process: the client finds
// the relays through the DHT only, data goes through a 3-hop circuit, the
// status shows it, and reloads change the hop count and the relay limits.
func TestNetwork(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 4, exits: 2, policy: []string{"accept 127.0.0.1:*"}})
	n.waitReady(t)
	url, body := fileServer(t, 1<<20)
	hc := socksClient(n.client.SOCKSAddr().String())

	t.Run("download", func(t *testing.T) {
		got, err := get(t, hc, url)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("got %d bytes, want %d, equal=%v", len(got), len(body), bytes.Equal(got, body))
		}
	})

	t.Run("status", func(t *testing.T) {
		// The client found enough relays for a path; it finds the rest
		// at its next refreshes.
		waitFor(t, 30*time.Second, "4 relays and 2 exits known", func() bool {
			nw := n.client.Status().Network
			return nw.RelaysKnown == 4 && nw.ExitsKnown == 2
		})
		st := n.client.Status()
		if st.Client == nil || !st.Client.Ready || len(st.Client.Circuits) == 0 {
			t.Fatalf("client status %+v", st.Client)
		}
		var down uint64
		relayIDs := map[string]bool{}
		for _, r := range n.relays {
			relayIDs[ShortID(r.ID())] = true
		}
		for _, c := range st.Client.Circuits {
			if len(c.Hops) != 3 {
				t.Fatalf("circuit with %d hops", len(c.Hops))
			}
			for i, h := range c.Hops {
				if !relayIDs[h.ID] {
					t.Fatalf("hop %q is not one of the relays", h.ID)
				}
				if want := []string{"guard", "middle", "exit"}[i]; h.Role != want {
					t.Fatalf("hop %d role %q, want %q", i, h.Role, want)
				}
			}
			down += c.BytesDown
		}
		if down < uint64(len(body)) {
			t.Fatalf("circuits carried %d bytes down, want at least %d", down, len(body))
		}
		var relayed uint64
		for _, r := range n.relays {
			if rs := r.Status().Relay; rs != nil {
				relayed += rs.Bytes
			}
		}
		if relayed < 3*uint64(len(body)) {
			t.Fatalf("relays handled %d bytes, want at least 3 hops x %d", relayed, len(body))
		}
	})

	t.Run("status server", func(t *testing.T) {
		addr := n.client.StatusAddr().String()
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		if st.PeerID != n.client.ID().String() || st.Client == nil || len(st.Client.Circuits) == 0 ||
			len(st.Client.Circuits[0].Hops) != 3 {
			t.Fatalf("status from the server: %+v", st)
		}
		for _, host := range []string{"evil.example", "127.0.0.1.evil.example", "192.168.1.1"} {
			req, _ := http.NewRequest("GET", "http://"+addr+"/api/status", nil)
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("Host %q: status %d, want 403", host, resp.StatusCode)
			}
		}
		resp2, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp2.Body)
		resp2.Body.Close()
		if !strings.Contains(string(page), st.Client.Circuits[0].Hops[0].ID) ||
			strings.Contains(string(page), "<script>") {
			t.Fatalf("status page lacks the first circuit's guard or has an inline script:\n%s", page)
		}
	})

	t.Run("reload hops", func(t *testing.T) {
		prev := n.client.Config()
		next := prev.Clone()
		next.Client.Hops = 2
		next.Log.Level = "error"
		if err := n.client.Apply(prev, next); err != nil {
			t.Fatal(err)
		}
		if logrus.GetLevel() != logrus.ErrorLevel {
			t.Fatalf("log level %v after reload, want error", logrus.GetLevel())
		}
		if err := SetupLogging(prev.Log); err != nil {
			t.Fatal(err)
		}
		n.client.mu.Lock()
		pool := n.client.pool
		n.client.mu.Unlock()
		pool.NewIdentity() // retire the 3-hop circuits; new ones follow the config
		got, err := get(t, hc, url)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("download after reload: %v", err)
		}
		waitFor(t, 30*time.Second, "a 2-hop circuit", func() bool {
			for _, c := range n.client.Status().Client.Circuits {
				if len(c.Hops) == 2 && c.Hops[0].Role == "guard" && c.Hops[1].Role == "exit" {
					return true
				}
			}
			return false
		})
	})

	t.Run("reload relay limits", func(t *testing.T) {
		r := n.relays[1]
		prev := r.Config()
		next := prev.Clone()
		next.Relay.BandwidthRate = 1 << 20
		next.Relay.MaxStreamsPerCircuit = 7
		next.Node.Listen = []string{"/ip4/127.0.0.1/tcp/1"} // needs a restart
		hook := logtest.NewLocal(logrus.StandardLogger())
		t.Cleanup(func() { logrus.StandardLogger().ReplaceHooks(make(logrus.LevelHooks)) })
		if err := r.Apply(prev, next); err != nil {
			t.Fatal(err)
		}
		var warned bool
		for _, e := range hook.AllEntries() {
			warned = warned || e.Level == logrus.WarnLevel && strings.Contains(e.Message, "only after a restart: node.listen")
		}
		if !warned {
			t.Fatalf("no warning about node.listen needing a restart; log: %v", hook.AllEntries())
		}
		if got := r.Addrs()[0].String(); strings.Contains(got, "/tcp/1/") {
			t.Fatalf("listen address changed without a restart: %s", got)
		}
		r.mu.Lock()
		l := r.relay.Limits()
		r.mu.Unlock()
		if l.BandwidthRate != 1<<20 || l.MaxStreamsPerCircuit != 7 {
			t.Fatalf("relay limits after reload: %+v", l)
		}
	})

	t.Run("close", func(t *testing.T) {
		done := make(chan struct{})
		go func() { n.close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("closing the network took more than 10s")
		}
		if err := n.client.Close(); err != nil { // idempotent
			t.Fatalf("second close: %v", err)
		}
		checkNoLeak(t)
	})
}

// TestNoRole: a configuration with neither role is refused.
func TestNoRole(t *testing.T) {
	c := testConfig(t)
	c.Client.Enabled = false
	if _, err := New(t.Context(), c, Options{}); !errors.Is(err, ErrNoRole) {
		t.Fatalf("got %v, want ErrNoRole", err)
	}
}

// TestStartTwice: Start after Start or after Close fails.
func TestStartTwice(t *testing.T) {
	c := relayConfig(t, false, nil, nil)
	n := startNode(t, c, Options{})
	if err := n.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// TestClientWithoutRelays: a client in a network of one relay (too few for
// a path) keeps its proxies up and answers a dial with a SOCKS error once
// the build timeout has passed.
func TestClientWithoutRelays(t *testing.T) {
	boot := startNode(t, relayConfig(t, false, nil, nil), Options{})
	c := testConfig(t)
	c.Client.BuildTimeout = config.Duration(2 * time.Second)
	for _, a := range boot.Addrs() {
		c.Node.Bootstrap = append(c.Node.Bootstrap, a.String())
	}
	cl := startNode(t, c, Options{AllowSameSubnet: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := socksDial(ctx, cl.SOCKSAddr().String(), "127.0.0.1:9")
	var se *socksError
	if !errors.As(err, &se) {
		t.Fatalf("dial without relays: %v, want a SOCKS error reply", err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("dial timed out: %v", err)
	}
}

// TestJoinRetry: a node whose bootstrap peer is down keeps trying, and
// joins once the peer is up.
func TestJoinRetry(t *testing.T) {
	bootCfg := relayConfig(t, false, nil, nil)
	boot, err := New(t.Context(), bootCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := boot.Addrs()[0]
	if err := boot.Close(); err != nil {
		t.Fatal(err)
	}

	c := testConfig(t)
	c.Node.Bootstrap = []string{addr.String()}
	// Another loopback address: the kernel may hand the freed port of
	// the bootstrap peer to this node, which would then be dialing itself.
	c.Node.Listen = []string{"/ip4/127.0.0.2/tcp/0"}
	cl := startNode(t, c, Options{AllowSameSubnet: true})
	select {
	case <-cl.Joined():
		t.Fatal("joined through a bootstrap peer that is down")
	case <-time.After(1500 * time.Millisecond):
	}
	if st := cl.Status(); st.Joined || cl.SOCKSAddr() == nil {
		t.Fatalf("status while joining: joined %v, SOCKS %v", st.Joined, cl.SOCKSAddr())
	}

	// The same node again, on the same address.
	transport, _ := peer.SplitAddr(addr)
	bootCfg.Node.Listen = []string{transport.String()}
	boot2 := startNode(t, bootCfg, Options{})
	if boot2.ID() != boot.ID() {
		t.Fatalf("bootstrap node came back as %s, was %s", boot2.ID(), boot.ID())
	}
	select {
	case <-cl.Joined():
	case <-time.After(45 * time.Second):
		t.Fatal("not joined 45s after the bootstrap peer came up")
	}
}
