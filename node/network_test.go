package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// fetch GETs url with c and returns the body of a 200 answer.
func fetch(t testing.TB, c *http.Client, url string) ([]byte, error) {
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
	n := startNet(t, 4, 2, nil)
	url, body := testutil.FileServer(t, 1<<20)
	hc := testutil.SOCKSClient(n.Client.SOCKSAddr().String())

	t.Run("download", func(t *testing.T) {
		got, err := fetch(t, hc, url)
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
		testutil.WaitFor(t, 30*time.Second, "4 relays and 2 exits known", func() bool {
			nw := n.Client.Status().Network
			return nw.RelaysKnown == 4 && nw.ExitsKnown == 2
		})
		st := n.Client.Status()
		if st.Client == nil || !st.Client.Ready || len(st.Client.Circuits) == 0 {
			t.Fatalf("client status %+v", st.Client)
		}
		var down uint64
		relayIDs := map[string]bool{}
		for _, r := range n.Relays {
			relayIDs[node.ShortID(r.ID())] = true
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
		for _, r := range n.Relays {
			if rs := r.Status().Relay; rs != nil {
				relayed += rs.Bytes
			}
		}
		if relayed < 3*uint64(len(body)) {
			t.Fatalf("relays handled %d bytes, want at least 3 hops x %d", relayed, len(body))
		}
	})

	t.Run("status server", func(t *testing.T) {
		addr := n.Client.StatusAddr().String()
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st node.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		if st.PeerID != n.Client.ID().String() || st.Client == nil || len(st.Client.Circuits) == 0 ||
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
		prev := n.Client.Config()
		next := prev.Clone()
		next.Client.Hops = 2
		next.Log.Level = "error"
		if err := n.Client.Apply(prev, next); err != nil {
			t.Fatal(err)
		}
		if logrus.GetLevel() != logrus.ErrorLevel {
			t.Fatalf("log level %v after reload, want error", logrus.GetLevel())
		}
		if err := node.SetupLogging(prev.Log); err != nil {
			t.Fatal(err)
		}
		n.Client.Pool().NewIdentity() // retire the 3-hop circuits; new ones follow the config
		got, err := fetch(t, hc, url)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("download after reload: %v", err)
		}
		testutil.WaitFor(t, 30*time.Second, "a 2-hop circuit", func() bool {
			for _, c := range n.Client.Status().Client.Circuits {
				if len(c.Hops) == 2 && c.Hops[0].Role == "guard" && c.Hops[1].Role == "exit" {
					return true
				}
			}
			return false
		})
	})

	t.Run("reload relay limits", func(t *testing.T) {
		r := n.Relays[1]
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
		l := r.RelayLimits()
		if l.BandwidthRate != 1<<20 || l.MaxStreamsPerCircuit != 7 {
			t.Fatalf("relay limits after reload: %+v", l)
		}
	})

	t.Run("close", func(t *testing.T) {
		done := make(chan struct{})
		go func() { _ = n.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("closing the network took more than 10s")
		}
		if err := n.Client.Close(); err != nil { // idempotent
			t.Fatalf("second close: %v", err)
		}
		testutil.CheckNoLeaks(t, testutil.Pikcio)
	})
}
