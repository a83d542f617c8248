package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
)

// trustTIS is a TIS whose relay score statements come from view, which
// the seed relay of the test network keeps fresh.
type trustTIS struct {
	*testTIS
	dir  string
	view *trust.View
}

func newTrustTIS(t testing.TB) *trustTIS {
	t.Helper()
	var view *trust.View
	s := tistest.Start(t, func(root ed25519.PublicKey) tis.ServerOptions {
		view = trust.NewView(trust.ViewOptions{Root: root})
		return tis.ServerOptions{RelayScorer: trust.TISScorer{View: view}}
	})
	mountTokens(t, s, token.IssuerOptions{})
	return &trustTIS{testTIS: &testTIS{srv: s.Server, url: s.URL, root: s.Root}, dir: s.Dir, view: view}
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

// newTrustNet starts the trust test network: 4 enrolled relays (2 and 3
// exits) whose operator 0 is the TIS's seed and vouches for operators 1
// (weight 30) and 2 (100), and an enrolled client; it waits for a circuit.
func newTrustNet(t testing.TB) (*trustTIS, *testNet, []*tis.Enrollment) {
	t.Helper()
	s := newTrustTIS(t)
	fast := func(c *config.Config) { c.Trust.Refresh = config.Duration(time.Second) }
	refresh := []discovery.Option{discovery.RefreshInterval(time.Second), discovery.RepublishInterval(2 * time.Second)}
	net, ens := newEnrolledNet(t, s.testTIS, 4, enrolledOpts{
		relay: func(i int, en *tis.Enrollment, cfg *config.Config, opts *Options) {
			fast(cfg)
			opts.Discovery = refresh
			if i == 0 {
				if err := tis.WriteSeeds(s.dir, []tis.ID{en.MatryoshkaCert.ID}); err != nil {
					t.Fatal(err)
				}
				opts.TrustView = s.view
			}
		},
		relaysUp: func(net *testNet, ens []*tis.Enrollment) {
			// The seed vouches, while running, as `pikcio trust vouch` would.
			vouchFrom(t, net.relays[0].DataDir(), map[tis.ID]int{ens[1].MatryoshkaCert.ID: 30, ens[2].MatryoshkaCert.ID: 100})
		},
		// Contacts as guards is an opt-in; the test shows it working.
		client:     func(c *config.Config) { fast(c); c.Trust.PreferContactGuards = true },
		clientOpts: Options{Discovery: refresh},
	})
	t.Cleanup(net.close)
	net.waitReady(t)
	return s, net, ens
}

// TestTrustNetwork runs the trust system on a real network: the TIS names
// relay 0's operator as the seed, relay 0 vouches for the operators of
// relays 1 and 2, every node crawls the records from the DHT and computes
// the same scores, relays publish the TIS's statements of their bands,
// the client weighs exits by them (1,000 selections), a minimum exit
// score excludes the untrusted exit, a withdrawal lowers a score, and a
// contact exchange makes relay 1 a preferred guard.
func TestTrustNetwork(t *testing.T) {
	s, net, ens := newTrustNet(t)

	mid := func(i int) tis.ID { return ens[i].MatryoshkaCert.ID }
	want := []int{100, 17, 58, 0} // see trust's doc: 100*30/130*0.75, 100*100/130*0.75
	scores := func(n *Node) []int {
		out := make([]int, 4)
		for i := range out {
			out[i], _ = n.trust.View().Score(mid(i))
		}
		return out
	}
	// The same records give the same scores on three nodes.
	for _, n := range []*Node{net.client, net.relays[1], net.relays[3]} {
		waitFor(t, 30*time.Second, "scores computed", func() bool { return fmt.Sprint(scores(n)) == fmt.Sprint(want) })
	}

	// Relays carry the TIS's statements; the client verifies them.
	wantBands := [][2]int{{80, 100}, {0, 19}, {40, 59}, {0, 19}}
	waitFor(t, 60*time.Second, "relay statements in the client's directory", func() bool {
		for i, r := range net.relays {
			d, ok := net.client.disc.Descriptor(r.ID())
			if !ok {
				return false
			}
			lo, hi, _, ok := net.client.trust.Band(relayOf(d))
			if !ok || lo != wantBands[i][0] || hi != wantBands[i][1] {
				return false
			}
		}
		return true
	})

	// 1,000 selections follow the weights: exits 2 and 3 weigh 1+49.5 and
	// 1+9.5.
	relays := net.client.disc.Relays()
	sel := &discovery.Selector{Self: net.client.ID(), Weigher: trustWeigher{net.client.trust}, AllowSameSubnet: true}
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
	o2, o3 := float64(count[net.relays[2].ID()]), float64(count[net.relays[3].ID()])
	chi := (o2-e2)*(o2-e2)/e2 + (o3-e3)*(o3-e3)/e3
	t.Logf("exits over %d paths: trusted %v (expected %.0f), untrusted %v (expected %.0f); chi-square %.2f", draws, o2, e2, o3, e3, chi)
	if chi > 10.83 || math.IsNaN(chi) { // 1 degree of freedom, p = 0.001
		t.Fatalf("exit choice does not follow the trust weights: chi-square %.2f", chi)
	}

	// A minimum exit score excludes the untrusted exit.
	next := net.client.Config()
	next.Trust.MinExitScore = 40
	if err := net.client.Apply(net.client.Config(), next); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		p, err := sel.Select(relays, discovery.PathRequest{Hops: 3, Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p[len(p)-1].PeerID == net.relays[3].ID() {
			t.Fatal("exit below trust.min_exit_score chosen")
		}
	}

	// Relay 0 withdraws its vouch for relay 2's operator.
	vouchFrom(t, net.relays[0].DataDir(), map[tis.ID]int{mid(2): 0})
	waitFor(t, 30*time.Second, "score lowered by the withdrawal", func() bool {
		s, _ := net.client.trust.View().Score(mid(2))
		return s == 0
	})

	// A contact exchange: the client invites, relay 1's operator accepts
	// (as `pikcio contacts accept` does, from a short-lived host).
	inv, err := exchange.CreateInvite(net.client.DataDir(), net.client.Addrs(), "Relay One", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r1dir := net.relays[1].DataDir()
	en1, mkey1, err := tis.LoadEnrollment(r1dir)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey1, err := LoadOrCreateIdentity(r1dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c1, err := trust.OpenContacts(r1dir, s.root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	self := exchange.Self{MatryoshkaCert: en1.MatryoshkaCert, NodeCert: en1.NodeCert, MatryoshkaKey: mkey1, NodeKey: nodeKey1}
	if _, err := exchange.Accept(ctx, h, inv, self, s.root, c1, "The User"); err != nil {
		t.Fatal(err)
	}
	got, ok := net.client.trust.Contacts().ByNode(net.relays[1].ID())
	if !ok || got.Name != "Relay One" || got.ID != mid(1) {
		t.Fatalf("client's contact for relay 1: %+v, %v", got, ok)
	}
	// The contact's relay weighs trust.ContactGuardBoost times its band's weight
	// as a guard (its band may have moved with the withdrawal above).
	d1, _ := net.client.disc.Descriptor(net.relays[1].ID())
	plain := 1.0
	if lo, hi, _, ok := net.client.trust.Band(relayOf(d1)); ok {
		plain += float64(lo+hi) / 2
	}
	w := trustWeigher{net.client.trust}
	if g1, m1 := w.Weight(d1, discovery.RoleGuard), w.Weight(d1, discovery.RoleMiddle); g1 != trust.ContactGuardBoost*plain || m1 != plain {
		t.Fatalf("contact's relay weighs %v as a guard and %v as a middle; want %v and %v", g1, m1, trust.ContactGuardBoost*plain, plain)
	}
	// The names stay on their devices.
	for _, c := range []struct {
		dir, own, other string
	}{{net.client.DataDir(), "Relay One", "The User"}, {r1dir, "The User", "Relay One"}} {
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
