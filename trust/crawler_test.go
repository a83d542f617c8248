package trust_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// TestCrawler: a TIS running on its own crawls a network's trust records
// through the DHT and computes the same scores as the network's client:
// relay 0's operator is the seed and vouches for relays 1 (30) and 2
// (100); see the package doc for 100*30/130*0.75 and 100*100/130*0.75.
func TestCrawler(t *testing.T) {
	n := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Seeds = 1
		o.Vouches = []localnet.Vouch{{From: 0, To: 1, Weight: 30}, {From: 0, To: 2, Weight: 100}}
		o.TrustRefresh = time.Second
		o.NodeOptions = func(_ int, no *node.Options) {
			no.Discovery = append(no.Discovery, discovery.RefreshInterval(time.Second), discovery.RepublishInterval(2*time.Second))
		}
	})
	var ids []tis.ID
	for _, r := range n.Relays {
		en, _, err := tis.LoadEnrollment(r.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, en.MatryoshkaCert.ID)
	}
	var boot []string
	for _, a := range n.Relays[0].Addrs() {
		boot = append(boot, a.String())
	}
	view := trust.NewView(trust.ViewOptions{Root: n.TIS.PublicKey()})
	c, err := trust.NewCrawler(n.TIS.PublicKey(), boot, view, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	clientScores := func() []int {
		out := make([]int, len(ids))
		for i, id := range ids {
			if r, err := n.Client.TrustReport(id.String()); err == nil && r.Score != nil {
				out[i] = *r.Score
			}
		}
		return out
	}
	testutil.WaitFor(t, 60*time.Second, "the crawler's scores", func() bool {
		got := make([]int, len(ids))
		for i, id := range ids {
			got[i], _ = view.Score(id)
		}
		return fmt.Sprint(got) == "[100 17 58 0]" && fmt.Sprint(clientScores()) == fmt.Sprint(got)
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
