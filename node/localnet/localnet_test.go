package localnet_test

import (
	"bytes"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node/localnet"
)

func TestMain(m *testing.M) {
	testutil.QuietLogs()
	os.Exit(m.Run())
}

// fetchThrough fetches url through the client's HTTP proxy and checks
// that the answer is body.
func fetchThrough(t *testing.T, n *localnet.Network, url string, body []byte) {
	t.Helper()
	proxyURL := &neturl.URL{Scheme: "http", Host: n.Client.HTTPAddr().String()}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 60 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetched %d bytes (%v), want %d", len(got), err, len(body))
	}
}

// TestStartTest: the network's client builds a circuit through enrolled
// relays and fetches a file from a loopback server through its HTTP
// proxy; the relays of the seeds' vouchees get trust bands; Close stops
// everything.
func TestStartTest(t *testing.T) {
	fileURL, body := testutil.FileServer(t, 256<<10)
	n := localnet.StartTest(t, 3, nil)
	if len(n.Relays) != 3 || n.Exits != 2 || n.Client == nil {
		t.Fatalf("%d relays, %d exits, client %v", len(n.Relays), n.Exits, n.Client)
	}
	n.WaitReady(t)
	fetchThrough(t, n, fileURL, body)
	// Relay 2 is vouched for by both seeds: the TIS states a band for it.
	testutil.WaitFor(t, 60*time.Second, "a trust band for relay 2", func() bool {
		rep, err := n.Client.TrustReport(n.Relays[2].ID().String())
		return err == nil && rep.Band != nil && rep.Band.Min > 0
	})
	if err := n.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Logf("second close: %v", err)
	}
	testutil.CheckNoLeaks(t, testutil.Pikcio)
}

func TestStartErrors(t *testing.T) {
	for _, relays := range []int{localnet.MinRelays - 1, localnet.MaxRelays + 1} {
		if _, err := localnet.Start(t.Context(), localnet.Options{Dir: t.TempDir(), Relays: relays}); err == nil {
			t.Fatalf("Start with %d relays succeeded", relays)
		}
	}
	if _, err := localnet.Start(t.Context(), localnet.Options{Relays: 3}); err == nil {
		t.Fatal("Start without a directory succeeded")
	}
}

// TestStartWithoutTIS: a network with NoTIS has no TIS and enrolls
// nothing, its client still carries a fetch through three relays, and
// Config reaches every node before it starts.
func TestStartWithoutTIS(t *testing.T) {
	fileURL, body := testutil.FileServer(t, 64<<10)
	var seen []int
	n := localnet.StartTest(t, 3, func(o *localnet.Options) {
		o.NoTIS = true
		o.Exits = 1
		o.Config = func(i int, cfg *config.Config) {
			seen = append(seen, i)
			if i == 2 {
				cfg.Relay.ExitPolicy = append(cfg.Relay.ExitPolicy, "accept 127.0.0.2:*")
			}
		}
	})
	if n.TIS != nil || n.Codes != nil || n.View != nil || n.Exits != 1 {
		t.Fatalf("TIS %v, codes %v, view %v, %d exits", n.TIS, n.Codes, n.View, n.Exits)
	}
	if want := []int{0, 1, 2, -1}; !slices.Equal(seen, want) {
		t.Fatalf("Config saw nodes %v, want %v", seen, want)
	}
	if p := n.Relays[2].Config().Relay.ExitPolicy; !slices.Contains(p, "accept 127.0.0.2:*") {
		t.Fatalf("relay 2's exit policy %v: Config not applied", p)
	}
	n.WaitReady(t)
	if st := n.Client.Status(); st.Identity != nil {
		t.Fatalf("client shows an enrollment without a TIS: %+v", st.Identity)
	}
	fetchThrough(t, n, fileURL, body)
}
