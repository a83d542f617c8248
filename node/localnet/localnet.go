// Package localnet builds a whole pikcio network in one process on
// 127.0.0.1: a Trusted Identification System, enrolled relays (some of
// them exits) that join through the first one, the TIS's seeds and
// vouches so that the relays get different trust bands, and an enrolled
// client that finds them through the DHT. `pikcio demo` runs one (Start),
// and tests build one with StartTest, which the test's end closes. With
// Options.NoTIS the network is plain relays and a client, nothing
// enrolled: what the node's tests of routing, proxies and reload use.
package localnet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/trust"
)

// Limits and defaults of Options.
const (
	MinRelays = 3 // a guard, a middle and an exit
	MaxRelays = 32
	// DefaultTrustRefresh is the network's trust.refresh: short, so that
	// the relays' trust statements show within seconds.
	DefaultTrustRefresh = 5 * time.Second
	// ClientName is the name the client is enrolled under; relay i
	// (from 0) is enrolled as "relay-<i+1>".
	ClientName = "demo-client"
	// nodeTimeout bounds one node's start, and one enrollment.
	nodeTimeout = 30 * time.Second
)

// Vouch is a vouch between the operators of two relays, by index.
type Vouch struct{ From, To, Weight int }

// DefaultVouches are the demo's vouches. The operators of relays 0 and 1
// are the TIS's seeds; relay 2 is well vouched for (100), relay 3 less
// (21), relay 4 little (13), the others not at all.
var DefaultVouches = []Vouch{{0, 2, 100}, {0, 3, 40}, {1, 2, 100}, {1, 4, 20}}

// Options configure a network. Dir and Relays are required.
type Options struct {
	// Dir holds the TIS's directory and each node's data directory. With
	// a directory an earlier Start used, the same keys come back.
	Dir string
	// Relays is the number of relays, MinRelays to MaxRelays.
	Relays int
	// Exits is how many of the relays (the last ones) are exits (0:
	// half of them, at least two; never relay 0).
	Exits int
	// Base is every node's configuration before localnet's changes (nil:
	// config.Default with TCP on 127.0.0.1 and the client's listeners on
	// free ports). Its client listeners are the client's.
	Base *config.Config
	// TrustRefresh is every node's trust.refresh (0: DefaultTrustRefresh).
	TrustRefresh time.Duration
	// Seeds is how many of the first relays' operators are TIS seeds (0:
	// 2), and Vouches their vouches (nil: DefaultVouches; vouches naming
	// relays beyond Relays are left out).
	Seeds   int
	Vouches []Vouch
	// NodeOptions, if not nil, adds to each node's options; i is the
	// relay's index, or -1 for the client (-2, -3... for ExtraClients).
	NodeOptions func(i int, o *node.Options)
	// ExtraClients are more enrolled clients, "demo-client-2" and on, in
	// Network.Extra (tests of two users; NodeOptions sees them as -2, -3...).
	ExtraClients int
	// DemoService publishes, on the client, a page that explains what each
	// hop could see, as DemoServiceName (demo.pikcio). pikcio demo sets it.
	DemoService bool
	// NoTIS builds the network without a TIS: plain relays and clients,
	// nothing enrolled, no trust (TrustRefresh, Seeds and Vouches are
	// ignored). Network.TIS, Codes and View stay nil.
	NoTIS bool
	// Config, if not nil, changes each node's configuration before it
	// starts (and before it enrolls); i as for NodeOptions.
	Config func(i int, cfg *config.Config)
}

// Network is a running local network.
type Network struct {
	TIS    *tis.Server
	TISURL string
	// Codes holds the TIS's enrollment codes: it mails nothing and logs
	// them, and the network enrolls its own nodes with them.
	Codes *tis.DemoMailer
	// View is the TCI view the TIS makes relay score statements from;
	// relay 0 keeps it fresh.
	View   *trust.View
	Relays []*node.Node
	Exits  int
	Client *node.Node
	Extra  []*node.Node // Options.ExtraClients

	closeOnce sync.Once
	stopDemo  func() // the demo service's web server, if any
}

// Start builds and starts a network: the TIS, the relays (the first one
// alone, the others joining through it), then the client. It returns
// when every node started, before the client's first circuit (see
// Client.Ready). On an error it closes what it started.
func Start(ctx context.Context, o Options) (*Network, error) {
	if o.Relays < MinRelays || o.Relays > MaxRelays {
		return nil, fmt.Errorf("localnet: %d relays: want %d to %d", o.Relays, MinRelays, MaxRelays)
	}
	if o.Dir == "" {
		return nil, errors.New("localnet: no directory")
	}
	if o.Exits <= 0 {
		o.Exits = max(2, (o.Relays+1)/2)
	}
	o.Exits = min(o.Exits, o.Relays-1) // relay 0, where the others join, is no exit
	if o.Base == nil {
		o.Base = config.Default()
		o.Base.Client.SOCKSListen = "127.0.0.1:0"
		o.Base.Client.HTTPListen = "127.0.0.1:0"
		o.Base.Client.StatusListen = "127.0.0.1:0"
	}
	base := o.Base.Clone()
	base.Node.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	if o.TrustRefresh <= 0 {
		o.TrustRefresh = DefaultTrustRefresh
	}
	if o.Seeds <= 0 {
		o.Seeds = 2
	}
	if o.Vouches == nil {
		o.Vouches = DefaultVouches
	}
	n := &Network{Exits: o.Exits}
	if err := n.start(ctx, o, base); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Network) start(ctx context.Context, o Options, base *config.Config) error {
	tisDir := filepath.Join(o.Dir, "tis")
	if !o.NoTIS {
		if err := n.startTIS(tisDir, base); err != nil {
			return err
		}
		base.Trust.Refresh = config.Duration(o.TrustRefresh)
	}
	cfgs := make([]*config.Config, o.Relays)
	for i := range o.Relays {
		cfg := base.Clone()
		cfg.Client.Enabled = false
		cfg.Client.SOCKSListen, cfg.Client.HTTPListen, cfg.Client.StatusListen = "", "", ""
		cfg.Client.ControlListen = ""
		cfg.Relay.Enabled = true
		cfg.Relay.Exit = i >= o.Relays-o.Exits
		cfg.Node.DataDir = filepath.Join(o.Dir, fmt.Sprintf("relay-%d", i))
		if err := n.prepare(ctx, o, i, cfg, fmt.Sprintf("relay-%d", i+1)); err != nil {
			return err
		}
		cfgs[i] = cfg
	}
	if !o.NoTIS {
		if err := writeTrust(tisDir, cfgs, o.Seeds, o.Vouches); err != nil {
			return err
		}
	}
	var boot []string
	for i, cfg := range cfgs {
		cfg.Node.Bootstrap = boot
		opts := node.Options{AllowSameSubnet: true}
		if i == 0 {
			opts.TrustView = n.View
		}
		if o.NodeOptions != nil {
			o.NodeOptions(i, &opts)
		}
		nd, err := startNode(ctx, cfg, opts)
		if err != nil {
			return fmt.Errorf("relay %d: %w", i, err)
		}
		n.Relays = append(n.Relays, nd)
		if i == 0 {
			for _, a := range nd.Addrs() {
				boot = append(boot, a.String())
			}
		}
	}
	cfg := base.Clone()
	cfg.Client.Enabled = true
	cfg.Node.Bootstrap = boot
	cfg.Node.DataDir = filepath.Join(o.Dir, "client")
	if err := n.prepare(ctx, o, -1, cfg, ClientName); err != nil {
		return err
	}
	opts := node.Options{AllowSameSubnet: true}
	if o.DemoService {
		addr, stop, err := startDemoService()
		if err != nil {
			return err
		}
		n.stopDemo = stop
		opts.Services = append(opts.Services, node.ServiceConfig{Name: DemoServiceName, Target: addr})
	}
	if o.NodeOptions != nil {
		o.NodeOptions(-1, &opts)
	}
	nd, err := startNode(ctx, cfg, opts)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	n.Client = nd
	for i := range o.ExtraClients {
		cfg := base.Clone()
		cfg.Client.Enabled = true
		cfg.Node.Bootstrap = boot
		cfg.Node.DataDir = filepath.Join(o.Dir, fmt.Sprintf("client-%d", i+2))
		if err := n.prepare(ctx, o, -2-i, cfg, fmt.Sprintf("%s-%d", ClientName, i+2)); err != nil {
			return err
		}
		opts := node.Options{AllowSameSubnet: true}
		if o.NodeOptions != nil {
			o.NodeOptions(-2-i, &opts)
		}
		nd, err := startNode(ctx, cfg, opts)
		if err != nil {
			return fmt.Errorf("client %d: %w", i+2, err)
		}
		n.Extra = append(n.Extra, nd)
	}
	return nil
}

// startTIS runs the TIS in this process on 127.0.0.1, in dir (reusing
// the one an earlier Start made), and points base at it with
// certificates required.
func (n *Network) startTIS(dir string, base *config.Config) error {
	if _, err := tis.Init(dir); err != nil && !errors.Is(err, tis.ErrExists) {
		return fmt.Errorf("TIS: %w", err)
	}
	root, err := tis.Open(dir)
	if err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	n.View = trust.NewView(trust.ViewOptions{Root: root.PublicKey()})
	n.Codes = &tis.DemoMailer{}
	srv, err := tis.NewServer(dir, tis.ServerOptions{EnrollRate: 100, EnrollBurst: 4 * MaxRelays, AddrRate: 100, AddrBurst: 4 * MaxRelays, Mailer: n.Codes, RelayScorer: trust.TISScorer{View: n.View}})
	if err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	n.TIS = srv
	if _, err := token.Mount(srv, dir, token.IssuerOptions{}); err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	n.TISURL = tis.BaseURL(addr.String())
	base.TIS.RootKey = tis.FormatKey(srv.PublicKey())
	base.TIS.URL = n.TISURL
	base.TIS.Require = true
	return nil
}

// prepare applies Options.Config to node i's cfg, then enrolls it as
// name unless the network has no TIS.
func (n *Network) prepare(ctx context.Context, o Options, i int, cfg *config.Config, name string) error {
	if o.Config != nil {
		o.Config(i, cfg)
	}
	if o.NoTIS {
		return nil
	}
	return n.enroll(ctx, cfg, name)
}

// enroll enrolls the node of cfg with the TIS, unless an earlier Start
// with the same directory did and its certificate is good for an hour
// more.
func (n *Network) enroll(ctx context.Context, cfg *config.Config, name string) error {
	priv, err := datadir.LoadOrCreateIdentity(cfg.Node.DataDir)
	if err != nil {
		return err
	}
	if en, _, err := tis.LoadEnrollment(cfg.Node.DataDir); err == nil {
		id, err := peer.IDFromPrivateKey(priv)
		if err == nil && tis.VerifyNodeCert(en.NodeCert, n.TIS.PublicKey(), id, time.Now().Add(time.Hour), nil) == nil {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, nodeTimeout)
	defer cancel()
	c := tis.NewClient(n.TISURL, n.TIS.PublicKey())
	c.Code = n.Codes.Code
	if _, err := c.EnrollNode(ctx, priv, cfg.Node.DataDir, name, name+"@demo.invalid", ""); err != nil {
		return fmt.Errorf("enroll %s: %w", name, err)
	}
	return nil
}

// writeTrust names the first seeds relays' operators as the TIS's seeds
// and writes the vouches into the voucher relays' data directories, as
// `pikcio tis seed add` and `pikcio trust vouch` would; the relays
// publish them when they start.
func writeTrust(tisDir string, cfgs []*config.Config, seeds int, vouches []Vouch) error {
	mids := make([]tis.ID, len(cfgs))
	for i, cfg := range cfgs {
		en, _, err := tis.LoadEnrollment(cfg.Node.DataDir)
		if err != nil {
			return err
		}
		mids[i] = en.MatryoshkaCert.ID
	}
	if err := tis.WriteSeeds(tisDir, mids[:min(seeds, len(mids))]); err != nil {
		return fmt.Errorf("TIS seeds: %w", err)
	}
	for _, v := range vouches {
		if v.From >= len(cfgs) || v.To >= len(cfgs) {
			continue
		}
		dir := cfgs[v.From].Node.DataDir
		_, key, err := tis.LoadEnrollment(dir)
		if err != nil {
			return err
		}
		own, err := trust.LoadOwn(dir)
		if err != nil {
			return err
		}
		if _, err := own.Vouch(key, mids[v.From], mids[v.To], v.Weight, 0, time.Now()); err != nil {
			return err
		}
		if err := own.Save(dir); err != nil {
			return err
		}
	}
	return nil
}

func startNode(ctx context.Context, cfg *config.Config, opts node.Options) (*node.Node, error) {
	nd, err := node.New(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, nodeTimeout)
	defer cancel()
	if err := nd.Start(sctx); err != nil {
		_ = nd.Close()
		return nil, err
	}
	return nd, nil
}

// Close stops the client, then every relay at once, then the TIS, and
// waits for them. It is idempotent.
func (n *Network) Close() error {
	var errs []error
	n.closeOnce.Do(func() {
		for _, c := range n.Extra {
			errs = append(errs, c.Close())
		}
		if n.Client != nil {
			errs = append(errs, n.Client.Close())
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, r := range n.Relays {
			wg.Go(func() {
				err := r.Close()
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}
		wg.Wait()
		if n.TIS != nil {
			errs = append(errs, n.TIS.Close())
		}
		if n.stopDemo != nil {
			n.stopDemo()
		}
	})
	return errors.Join(errs...)
}

// StartTest starts a network of relays relays in a temporary directory
// for a test, with exits that accept 127.0.0.1 (to reach the test's own
// servers), and closes it at the test's end. edit, if not nil, changes
// the options first.
func StartTest(t testing.TB, relays int, edit func(*Options)) *Network {
	t.Helper()
	base := config.Default()
	base.Log.Level = "warn"
	base.Client.SOCKSListen = "127.0.0.1:0"
	base.Client.HTTPListen = "127.0.0.1:0"
	base.Client.StatusListen = "127.0.0.1:0"
	base.Relay.ExitPolicy = []string{"accept 127.0.0.1:*"}
	o := Options{Dir: t.TempDir(), Relays: relays, Base: base}
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("local network: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// WaitReady waits, for at most 90 s, until the client built its first
// circuit, and fails the test otherwise.
func (n *Network) WaitReady(t testing.TB) {
	t.Helper()
	select {
	case <-n.Client.Ready():
	case <-time.After(90 * time.Second):
		t.Fatalf("no circuit after 90 s; status: %+v", n.Client.Status())
	}
}
