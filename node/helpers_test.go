package node

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.QuietLogs()
	os.Exit(m.Run())
}

// testConfig is a configuration for a node of a loopback test network:
// TCP only, its own data directory, listeners on free ports.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c := config.Default()
	c.Node.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.Node.DataDir = filepath.Join(t.TempDir(), "data")
	c.Client.SOCKSListen = "127.0.0.1:0"
	c.Client.HTTPListen = "127.0.0.1:0"
	c.Client.StatusListen = "127.0.0.1:0"
	c.Log.Level = "warn"
	return c
}

func relayConfig(t testing.TB, exit bool, policy []string, boot []string) *config.Config {
	c := testConfig(t)
	c.Client.Enabled = false
	c.Client.SOCKSListen, c.Client.HTTPListen, c.Client.StatusListen = "", "", ""
	c.Relay.Enabled = true
	c.Relay.Exit = exit
	c.Relay.ExitPolicy = policy
	c.Node.Bootstrap = boot
	return c
}

// startNode makes and starts a node that the test closes at its end.
func startNode(t testing.TB, cfg *config.Config, opts Options) *Node {
	t.Helper()
	n, err := New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatalf("new node: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start node: %v", err)
	}
	return n
}

// testNet is a loopback network for the internal tests of enrollment and
// admission, which build it from nodes they enroll themselves (the
// external tests use node/localnet): relays[0] is where the others join
// (not an exit), the last `exits` relays are exits, and a client.
type testNet struct {
	relays []*Node
	client *Node
}

type netOpts struct {
	relays int
	exits  int
	policy []string
	// relay, if not nil, changes relay i's configuration before it starts.
	relay  func(i int, cfg *config.Config)
	client func(c *config.Config)
}

func newTestNet(t testing.TB, o netOpts) *testNet {
	t.Helper()
	n := &testNet{}
	var boot []string
	for i := range o.relays {
		exit := i >= o.relays-o.exits
		cfg := relayConfig(t, exit, o.policy, boot)
		if o.relay != nil {
			o.relay(i, cfg)
		}
		nd := startNode(t, cfg, Options{})
		n.relays = append(n.relays, nd)
		if i == 0 {
			for _, a := range nd.Addrs() {
				boot = append(boot, a.String())
			}
		}
	}
	cfg := testConfig(t)
	cfg.Node.Bootstrap = boot
	if o.client != nil {
		o.client(cfg)
	}
	n.client = startNode(t, cfg, Options{AllowSameSubnet: true})
	return n
}

func (n *testNet) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-n.client.Ready():
	case <-time.After(60 * time.Second):
		t.Fatalf("no circuit after 60s; status: %+v", n.client.Status())
	}
}

func (n *testNet) close() {
	_ = n.client.Close()
	var wg sync.WaitGroup
	for _, r := range n.relays {
		wg.Go(func() { _ = r.Close() })
	}
	wg.Wait()
}

// waitFor polls cond until it holds or timeout passes (testutil.WaitFor).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// checkNoLeak waits until no goroutine of pikcio's packages is left, other
// than the tests' own.
func checkNoLeak(t testing.TB) {
	t.Helper()
	testutil.CheckNoLeaks(t, testutil.Pikcio)
}
