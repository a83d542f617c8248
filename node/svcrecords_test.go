package node_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/service"
)

// TestServiceRecordsThroughCircuits plays a DHT server in every routing
// table: a service's descriptor reaches it, published and then fetched
// by a client that opens the service, only from relays, never from the
// peer ID of the node that runs the service or of the one that visits it
// (before, both used their own DHT: a server near the blinded key learnt
// where the service runs and who visits it).
func TestServiceRecordsThroughCircuits(t *testing.T) {
	target := servePage(t, servicePage)
	net := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Base.Relay.ExitPolicy = []string{"reject *:*"}
		o.ExtraClients = 1
		o.NodeOptions = func(i int, opts *node.Options) {
			if i == -2 {
				opts.Services = append(opts.Services, node.ServiceConfig{Name: "web", Target: target})
			}
		}
	})
	host, visitor := net.Extra[0], net.Client
	obs := newRecordingDHT(t)
	obs.connect(t, append([]*node.Node{visitor, host}, net.Relays...)...)

	testutil.WaitFor(t, 2*time.Minute, "web published", func() bool {
		s := host.Services()
		return len(s) == 1 && !s[0].Published.IsZero()
	})
	addr := host.Services()[0].Address.Host()
	d, err := xproxy.SOCKS5("tcp", visitor.SOCKSAddr().String(), nil, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr, Timeout: 90 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET the service: %v", err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(page) != servicePage {
		t.Fatalf("GET the service: %q %v", page, err)
	}

	prefix := "/" + service.Namespace + "/"
	seen := func(typ dhtpb.Message_MessageType) bool {
		for _, r := range obs.requests(prefix) {
			if r.typ == typ {
				return true
			}
		}
		return false
	}
	testutil.WaitFor(t, 30*time.Second, "the descriptor put at the DHT server", func() bool {
		return seen(dhtpb.Message_PUT_VALUE)
	})
	relays := map[peer.ID]bool{}
	for _, r := range net.Relays {
		relays[r.ID()] = true
	}
	all := obs.requests(prefix)
	for _, r := range all {
		switch {
		case r.from == host.ID():
			t.Errorf("the DHT server saw the service's node ask %v of %s", r.typ, r.key)
		case r.from == visitor.ID():
			t.Errorf("the DHT server saw the visiting client ask %v of %s", r.typ, r.key)
		case !relays[r.from]:
			t.Errorf("the DHT server saw %s, not a relay, ask %v of %s", r.from.ShortString(), r.typ, r.key)
		}
	}
	t.Logf("%d service record requests seen by the DHT server (a get among them: %v)", len(all), seen(dhtpb.Message_GET_VALUE))
}
