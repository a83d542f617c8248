package node_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
)

// newTrustNet starts the trust test network (localnet): 4 enrolled relays
// (2 and 3 exits) whose operator 0 is the TIS's seed and vouches for
// operators 1 (weight 30) and 2 (100), and an enrolled client, with
// trust.refresh and discovery's intervals short; it waits for a circuit.
func newTrustNet(t testing.TB) *localnet.Network {
	t.Helper()
	refresh := []discovery.Option{discovery.RefreshInterval(time.Second), discovery.RepublishInterval(2 * time.Second)}
	net := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Exits, o.Seeds = 2, 1
		o.Vouches = []localnet.Vouch{{From: 0, To: 1, Weight: 30}, {From: 0, To: 2, Weight: 100}}
		o.TrustRefresh = time.Second
		o.NodeOptions = func(_ int, opts *node.Options) { opts.Discovery = refresh }
	})
	net.WaitReady(t)
	return net
}

// socksClient is an HTTP client whose connections go through the SOCKS5
// proxy at addr, one connection per request.
func socksClient(t testing.TB, addr string) *http.Client {
	t.Helper()
	d, err := xproxy.SOCKS5("tcp", addr, nil, &net.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       d.(xproxy.ContextDialer).DialContext,
	}}
}

// enrollmentOf is the enrollment of the node whose data directory is dir.
func enrollmentOf(t testing.TB, dir string) *tis.Enrollment {
	t.Helper()
	en, _, err := tis.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// vouchFrom writes, in the data directory of the voucher, a vouch for
// each of vouchees with its weight (0: withdraw), as `pikcio trust vouch`
// does; the running node publishes it.
func vouchFrom(t testing.TB, dir string, vouchees map[tis.ID]int) {
	t.Helper()
	en, key, err := tis.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	own, err := trust.LoadOwn(dir)
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range vouchees {
		if w == 0 {
			_, err = own.Withdraw(key, en.MatryoshkaCert.ID, id, time.Now())
		} else {
			_, err = own.Vouch(key, en.MatryoshkaCert.ID, id, w, 0, time.Now())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := own.Save(dir); err != nil {
		t.Fatal(err)
	}
}

// TestTrustNetwork runs the trust system on a real network: the TIS names
// relay 0's operator as the seed, relay 0 vouches for the operators of
// relays 1 and 2, every node crawls the records from the DHT and computes
// the same scores, relays publish the TIS's statements of their bands,
// the client weighs exits by them (1,000 selections), a minimum exit
// score excludes the untrusted exit, a withdrawal lowers a score, and a
// contact exchange makes relay 1 a preferred guard.
func TestTrustNetwork(t *testing.T) {
	net := newTrustNet(t)
	root := net.TIS.PublicKey()
	mid := func(i int) tis.ID { return enrollmentOf(t, net.Relays[i].DataDir()).MatryoshkaCert.ID }
	want := []int{100, 17, 58, 0} // see trust's doc: 100*30/130*0.75, 100*100/130*0.75
	scores := func(n *node.Node) []int {
		out := make([]int, 4)
		for i := range out {
			out[i], _ = n.TrustAgent().View().Score(mid(i))
		}
		return out
	}
	// The same records give the same scores on three nodes.
	for _, n := range []*node.Node{net.Client, net.Relays[1], net.Relays[3]} {
		testutil.WaitFor(t, 30*time.Second, "scores computed", func() bool { return fmt.Sprint(scores(n)) == fmt.Sprint(want) })
	}

	// Relays carry the TIS's statements; the client verifies them.
	wantBands := [][2]int{{80, 100}, {0, 19}, {40, 59}, {0, 19}}
	testutil.WaitFor(t, 60*time.Second, "relay statements in the client's directory", func() bool {
		for i, r := range net.Relays {
			d, ok := net.Client.Directory().Descriptor(r.ID())
			if !ok {
				return false
			}
			lo, hi, _, ok := net.Client.TrustAgent().Band(node.RelayOf(d))
			if !ok || lo != wantBands[i][0] || hi != wantBands[i][1] {
				return false
			}
		}
		return true
	})

	// 1,000 selections follow the weights: exits 2 and 3 weigh 1+49.5 and
	// 1+9.5.
	relays := net.Client.Directory().Relays()
	sel := &discovery.Selector{Self: net.Client.ID(), Weigher: node.TrustWeigher(net.Client.TrustAgent()), AllowSameSubnet: true}
	const draws = 1000
	count := map[peer.ID]int{}
	for range draws {
		p, err := sel.Select(relays, discovery.PathRequest{Hops: 3, Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		count[p[len(p)-1].PeerID]++
	}
	w2, w3 := 50.5, 10.5
	e2, e3 := draws*w2/(w2+w3), draws*w3/(w2+w3)
	o2, o3 := float64(count[net.Relays[2].ID()]), float64(count[net.Relays[3].ID()])
	chi := (o2-e2)*(o2-e2)/e2 + (o3-e3)*(o3-e3)/e3
	t.Logf("exits over %d paths: trusted %v (expected %.0f), untrusted %v (expected %.0f); chi-square %.2f", draws, o2, e2, o3, e3, chi)
	if chi > 10.83 || math.IsNaN(chi) { // 1 degree of freedom, p = 0.001
		t.Fatalf("exit choice does not follow the trust weights: chi-square %.2f", chi)
	}

	// A minimum exit score excludes the untrusted exit.
	next := net.Client.Config()
	next.Trust.MinExitScore = 40
	if err := net.Client.Apply(net.Client.Config(), next); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		p, err := sel.Select(relays, discovery.PathRequest{Hops: 3, Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p[len(p)-1].PeerID == net.Relays[3].ID() {
			t.Fatal("exit below trust.min_exit_score chosen")
		}
	}

	// Relay 0 withdraws its vouch for relay 2's operator.
	vouchFrom(t, net.Relays[0].DataDir(), map[tis.ID]int{mid(2): 0})
	testutil.WaitFor(t, 30*time.Second, "score lowered by the withdrawal", func() bool {
		s, _ := net.Client.TrustAgent().View().Score(mid(2))
		return s == 0
	})

	// Contacts as guards is an opt-in (trust.prefer_contact_guards); the
	// rest of the test shows it working.
	next = net.Client.Config()
	next.Trust.PreferContactGuards = true
	if err := net.Client.Apply(net.Client.Config(), next); err != nil {
		t.Fatal(err)
	}

	// A contact exchange: the client invites, relay 1's operator accepts
	// (as `pikcio contacts accept` does, from a short-lived host).
	inv, err := exchange.CreateInvite(net.Client.DataDir(), net.Client.Addrs(), "Relay One", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r1dir := net.Relays[1].DataDir()
	en1, mkey1, err := tis.LoadEnrollment(r1dir)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey1, err := datadir.LoadOrCreateIdentity(r1dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c1, err := trust.OpenContacts(r1dir, root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	self := exchange.Self{MatryoshkaCert: en1.MatryoshkaCert, NodeCert: en1.NodeCert, MatryoshkaKey: mkey1, NodeKey: nodeKey1}
	if _, err := exchange.Accept(ctx, h, inv, self, root, c1, "The User"); err != nil {
		t.Fatal(err)
	}
	got, ok := net.Client.TrustAgent().Contacts().ByNode(net.Relays[1].ID())
	if !ok || got.Name != "Relay One" || got.ID != mid(1) {
		t.Fatalf("client's contact for relay 1: %+v, %v", got, ok)
	}
	// The contact's relay weighs trust.ContactGuardBoost times its band's weight
	// as a guard (its band may have moved with the withdrawal above).
	d1, _ := net.Client.Directory().Descriptor(net.Relays[1].ID())
	plain := 1.0
	if lo, hi, _, ok := net.Client.TrustAgent().Band(node.RelayOf(d1)); ok {
		plain += float64(lo+hi) / 2
	}
	w := node.TrustWeigher(net.Client.TrustAgent())
	if g1, m1 := w.Weight(d1, discovery.RoleGuard), w.Weight(d1, discovery.RoleMiddle); g1 != trust.ContactGuardBoost*plain || m1 != plain {
		t.Fatalf("contact's relay weighs %v as a guard and %v as a middle; want %v and %v", g1, m1, trust.ContactGuardBoost*plain, plain)
	}
	// The names stay on their devices.
	for _, c := range []struct {
		dir, own, other string
	}{{net.Client.DataDir(), "Relay One", "The User"}, {r1dir, "The User", "Relay One"}} {
		b, err := os.ReadFile(filepath.Join(c.dir, trust.ContactsFile))
		if err != nil {
			t.Fatal(err)
		}
		if !containsStr(b, c.own) || containsStr(b, c.other) {
			t.Fatalf("%s: contacts file holds %q: %v, %q: %v", c.dir, c.own, containsStr(b, c.own), c.other, containsStr(b, c.other))
		}
	}
}

func containsStr(b []byte, s string) bool { return strings.Contains(string(b), s) }
