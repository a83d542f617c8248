package trust_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	record "github.com/libp2p/go-libp2p-record"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
	"github.com/pikcio/pikcio/trust"
)

// agentTIS is a test TIS whose relay score statements come from view.
func agentTIS(t *testing.T) (*tistest.TIS, *trust.View) {
	t.Helper()
	var view *trust.View
	s := tistest.Start(t, func(root ed25519.PublicKey) tis.ServerOptions {
		view = trust.NewView(trust.ViewOptions{Root: root})
		return tis.ServerOptions{RelayScorer: trust.TISScorer{View: view}}
	})
	return s, view
}

// newAgent enrolls a node with s and makes its trust agent (view nil: a
// fresh one).
func newAgent(t *testing.T, s *tistest.TIS, name string, set trust.Settings, view *trust.View) (tistest.Node, *trust.Agent) {
	t.Helper()
	n := s.EnrollNode(t, name, tis.AgentOptions{URL: s.URL, RevocationRefresh: time.Minute})
	a, err := trust.NewAgent(n.Agent, n.Dir, n.Key, nil, set, view)
	if err != nil {
		t.Fatal(err)
	}
	return n, a
}

func trustRecords(s *tistest.TIS) *tistest.Records {
	return tistest.NewRecords(map[string]record.Validator{trust.Namespace: trust.Validator{Root: s.Root}})
}

// run runs loop until the test ends.
func run(t *testing.T, loop func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { loop(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// storedBundle decodes the bundle of id in store.
func storedBundle(store *tistest.Records, id tis.ID) *trust.Bundle {
	data, ok := store.Get(trust.BundleKey(id))
	if !ok {
		return nil
	}
	b, err := trust.DecodeBundle(data)
	if err != nil {
		return nil
	}
	return b
}

// TestAgentKeep: the agent puts the TIS's seed list and its own bundle
// into the store, publishes a vouch written to its OwnFile as the CLI
// does, publishes again after a failed PUT once the store works, and
// computes scores from what the store holds.
func TestAgentKeep(t *testing.T) {
	s, _ := agentTIS(t)
	seed := s.EnrollNode(t, "seed", tis.AgentOptions{})
	if err := tis.WriteSeeds(s.Dir, []tis.ID{seed.Agent.Enrollment().MatryoshkaCert.ID}); err != nil {
		t.Fatal(err)
	}
	store := trustRecords(s)
	n, a := newAgent(t, s, "voucher", trust.Settings{Refresh: time.Hour}, nil)
	own := n.Agent.Enrollment().MatryoshkaCert.ID
	run(t, func(ctx context.Context) { a.Keep(ctx, store) })

	testutil.WaitFor(t, 20*time.Second, "seed list and own bundle in the store", func() bool {
		_, seeds := store.Get(trust.SeedsKey(s.Root))
		return seeds && storedBundle(store, own) != nil
	})
	if got := a.View().Seeds(); len(got) != 1 || got[0] != seed.Agent.Enrollment().MatryoshkaCert.ID {
		t.Fatalf("view seeds %v", got)
	}
	first := storedBundle(store, own)
	if len(first.Vouches) != 0 {
		t.Fatalf("first bundle vouches %d, want 0", len(first.Vouches))
	}

	// The store fails while the vouch is written: the agent tries again
	// at its next check once the store works.
	store.Fail(errors.New("no DHT peers"))
	o, err := trust.LoadOwn(n.Dir)
	if err != nil {
		t.Fatal(err)
	}
	vouchee := seed.Agent.Enrollment().MatryoshkaCert.ID
	if _, err := o.Vouch(n.Agent.MatryoshkaKey(), own, vouchee, 50, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := o.Save(n.Dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // one check with the store down
	store.Fail(nil)
	testutil.WaitFor(t, 20*time.Second, "the vouch in the store", func() bool {
		b := storedBundle(store, own)
		return b != nil && len(b.Vouches) == 1 && b.Vouches[0].Vouchee == vouchee && b.IssuedAt.After(first.IssuedAt)
	})
	if _, ok := a.View().Score(own); !ok {
		t.Fatal("no score for the agent's own identity")
	}
}

// statement signs a relay score statement for node as the TIS.
func statement(t *testing.T, s *tistest.TIS, node tis.ID, score int, expires time.Time) []byte {
	t.Helper()
	issued := time.Now().Add(-time.Minute).Truncate(time.Second)
	st := &trust.RelayScore{Node: node, Band: trust.BandOf(score), IssuedAt: issued, Expires: expires.Truncate(time.Second)}
	if err := st.Sign(s.RootKey); err != nil {
		t.Fatal(err)
	}
	data, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAgentWeight: a relay weighs 1 + the middle of its band for a
// statement of the TIS for the node of its certificate, and 1 for one
// it copied from another relay, forged, or let expire, or once its
// certificate is revoked; a minimum guard or exit score excludes those,
// never a middle.
func TestAgentWeight(t *testing.T) {
	s, _ := agentTIS(t)
	clientNode, client := newAgent(t, s, "client", trust.Settings{Refresh: time.Hour}, nil)
	relay := s.EnrollNode(t, "relay", tis.AgentOptions{})
	other := s.EnrollNode(t, "other", tis.AgentOptions{})
	relayNode := relay.Agent.Enrollment().NodeCert.ID
	good := statement(t, s, relayNode, 85, time.Now().Add(time.Hour)) // band 80-100
	forged := append([]byte(nil), good...)
	forged[len(forged)-1] ^= 1
	lo, hi := trust.BandRange(trust.BandOf(85))
	banded := 1 + float64(lo+hi)/2

	tests := []struct {
		name   string
		relay  trust.Relay
		weight float64
	}{
		{"stated", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: good}, banded},
		{"no statement", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate()}, 1},
		{"no certificate", trust.Relay{ID: relay.ID, Statement: good}, 1},
		{"copied by another relay", trust.Relay{ID: other.ID, Cert: other.Agent.Certificate(), Statement: good}, 1},
		{"forged", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: forged}, 1},
		{"expired", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: statement(t, s, relayNode, 85, time.Now().Add(-time.Second))}, 1},
		{"garbage", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: []byte{1, 2, 3}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client.Apply(trust.Settings{Refresh: time.Hour})
			for _, role := range []trust.Role{trust.RoleGuard, trust.RoleMiddle, trust.RoleExit} {
				if w := client.Weight(tt.relay, role); w != tt.weight {
					t.Fatalf("role %d: weight %v, want %v", role, w, tt.weight)
				}
			}
			client.Apply(trust.Settings{MinGuardScore: 60, MinExitScore: 60, Refresh: time.Hour})
			excluded := tt.weight == 1
			for _, role := range []trust.Role{trust.RoleGuard, trust.RoleExit} {
				if w := client.Weight(tt.relay, role); (w == 0) != excluded {
					t.Fatalf("role %d with a minimum of 60: weight %v", role, w)
				}
			}
			if w := client.Weight(tt.relay, trust.RoleMiddle); w != tt.weight {
				t.Fatalf("middle with a minimum: weight %v, want %v", w, tt.weight)
			}
		})
	}

	// The band was cached; a revocation of the relay's certificate ends it.
	stated := tests[0].relay
	client.Apply(trust.Settings{Refresh: time.Hour})
	if w := client.Weight(stated, trust.RoleGuard); w != banded {
		t.Fatalf("before revocation: %v", w)
	}
	if err := s.Server.Revoke(relay.Agent.Enrollment().NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	revs := tistest.NewRecords(map[string]record.Validator{tis.RevocationNamespace: tis.RevocationValidator{Root: s.Root}})
	run(t, func(ctx context.Context) { clientNode.Agent.KeepRevocations(ctx, revs, func() {}) })
	testutil.WaitFor(t, 20*time.Second, "the revocation", func() bool {
		l := clientNode.Agent.Revocations()
		return l != nil && l.Revoked(relay.Agent.Enrollment().NodeCert.Serial)
	})
	if w := client.Weight(stated, trust.RoleGuard); w != 1 {
		t.Fatalf("revoked relay weighs %v as a guard, want 1", w)
	}
}

// TestAgentRelayScore: a relay's agent fetches its statement from the
// TIS, republishes once it has it, and holds a band for its own node.
func TestAgentRelayScore(t *testing.T) {
	s, view := agentTIS(t)
	// Refresh 1 s: the first fetch fails until the view has scores.
	relay, a := newAgent(t, s, "relay", trust.Settings{Refresh: time.Second}, view)
	if err := tis.WriteSeeds(s.Dir, []tis.ID{relay.Agent.Enrollment().MatryoshkaCert.ID}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Statement(); ok {
		t.Fatal("a statement before any was fetched")
	}
	store := trustRecords(s)
	run(t, func(ctx context.Context) { a.Keep(ctx, store) }) // computes the view the TIS scores from
	republished := make(chan struct{}, 1)
	run(t, func(ctx context.Context) {
		a.KeepRelayScore(ctx, func() {
			select {
			case republished <- struct{}{}:
			default:
			}
		})
	})
	select {
	case <-republished:
	case <-time.After(20 * time.Second):
		t.Fatal("no statement fetched")
	}
	data, ok := a.Statement()
	if !ok {
		t.Fatal("republished without a statement")
	}
	st, err := trust.DecodeRelayScore(data)
	if err != nil || st.Verify(s.Root, time.Now()) != nil || st.Node != relay.Agent.Enrollment().NodeCert.ID {
		t.Fatalf("statement %+v: %v", st, err)
	}
	lo, hi, ok := a.OwnBand()
	if wlo, whi := st.Range(); !ok || lo != wlo || hi != whi {
		t.Fatalf("own band %d-%d %v, want %d-%d", lo, hi, ok, wlo, whi)
	}
}

// TestUnscoredExcludedOnceBanded: under the default minimum, a relay
// without a statement may be a guard or an exit while no relay carries
// one (a TIS that states no bands), and not once one does; it stays a
// middle, and a minimum of 0 admits it everywhere.
func TestUnscoredExcludedOnceBanded(t *testing.T) {
	s, _ := agentTIS(t)
	def := trust.Settings{MinGuardScore: trust.DefaultMinScore, MinExitScore: trust.DefaultMinScore, Refresh: time.Hour}
	_, client := newAgent(t, s, "client", def, nil)
	relay := s.EnrollNode(t, "relay", tis.AgentOptions{})
	plain := s.EnrollNode(t, "plain", tis.AgentOptions{})
	stated := trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: statement(t, s, relay.Agent.Enrollment().NodeCert.ID, 10, time.Now().Add(time.Hour))}
	unscored := trust.Relay{ID: plain.ID, Cert: plain.Agent.Certificate()}
	roles := []trust.Role{trust.RoleGuard, trust.RoleExit}
	for _, role := range roles {
		if w := client.Weight(unscored, role); w != 1 {
			t.Fatalf("role %d before any band: weight %v, want 1", role, w)
		}
	}
	if w := client.Weight(stated, trust.RoleGuard); w <= 1 {
		t.Fatalf("stated relay (band 0-19) as guard: weight %v, want over 1", w)
	}
	for _, role := range roles {
		if w := client.Weight(unscored, role); w != 0 {
			t.Fatalf("role %d once bands are stated: weight %v, want 0", role, w)
		}
	}
	if w := client.Weight(unscored, trust.RoleMiddle); w != 1 {
		t.Fatalf("unscored middle: weight %v, want 1", w)
	}
	client.Apply(trust.Settings{Refresh: time.Hour})
	for _, role := range roles {
		if w := client.Weight(unscored, role); w != 1 {
			t.Fatalf("role %d with a minimum of 0: weight %v, want 1", role, w)
		}
	}
}
