package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// Limits of pikcio demo --relays.
const (
	demoMinRelays     = 3 // a guard, a middle and an exit
	demoMaxRelays     = 32
	demoDefaultRelays = 5
)

func runDemo(e *env, args []string) int {
	fs := newFlagSet("demo", "[flags]", `Run a whole pikcio network on this machine, in one process, on 127.0.0.1:
relays (the first one is where the others join the DHT; about half of them,
and at least two, are exits) and a client that finds them through the DHT
and serves a SOCKS5 proxy, an HTTP proxy and a status page. A Trusted
Identification System runs in the process too: every relay and the client
are enrolled with it, and only certified relays and enrolled previous hops
are accepted. Point a browser at the SOCKS5 proxy. Ctrl-C stops everything.

Without --data the nodes' keys live in a temporary directory that is
removed on exit, so every run is a new network.`)
	relays := fs.Int("relays", demoDefaultRelays, fmt.Sprintf("number of relays, %d to %d", demoMinRelays, demoMaxRelays))
	socks := fs.String("socks", "127.0.0.1:1080", "SOCKS5 proxy `address` host:port")
	httpAddr := fs.String("http", "127.0.0.1:8118", "HTTP proxy `address` host:port; \"\" turns it off")
	status := fs.String("status", "127.0.0.1:7080", "status page `address` host:port; \"\" turns it off")
	var policy policyFlag
	fs.Var(&policy, "exit-policy", "exit `rules` placed before the default policy, comma-separated, e.g. 'accept 127.0.0.1:*' to reach servers on this machine; repeatable")
	data := fs.String("data", "", "`directory` for the nodes' keys and state, kept after exit (default: a temporary directory, removed on exit)")
	logLevel := fs.String("log-level", "warn", "log `level`: trace, debug, info, warn or error")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *relays < demoMinRelays || *relays > demoMaxRelays {
		return usageError(e, fs, "--relays %d: want %d to %d", *relays, demoMinRelays, demoMaxRelays)
	}
	if *socks == "" {
		return usageError(e, fs, "--socks: the demo needs a SOCKS5 proxy address")
	}

	base := config.Default()
	base.Log.Level = *logLevel
	base.Node.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	base.Client.SOCKSListen = *socks
	base.Client.HTTPListen = *httpAddr
	base.Client.StatusListen = *status
	base.Relay.ExitPolicy = append([]string{}, policy...)
	if err := base.Validate(); err != nil {
		return configError(e, fs.Name(), err)
	}
	if err := node.SetupLogging(base.Log); err != nil {
		return configError(e, fs.Name(), err)
	}

	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "pikcio-demo-")
		if err != nil {
			fmt.Fprintf(e.stderr, "pikcio demo: %v\n", err)
			return exitError
		}
		dir = tmp
		defer os.RemoveAll(tmp)
	}

	d := &demo{e: e, base: base, dir: dir}
	if err := d.startTIS(); err != nil {
		fmt.Fprintf(e.stderr, "pikcio demo: %v\n", err)
		d.close()
		return exitError
	}
	if err := d.start(*relays); err != nil {
		fmt.Fprintf(e.stderr, "pikcio demo: %v\n", err)
		d.close()
		return exitError
	}
	d.banner(*data == "")

	log := logrus.WithField("component", "demo")
	ready := d.client.Ready()
	slow := time.NewTimer(time.Minute)
	defer slow.Stop()
	for {
		select {
		case <-ready:
			fmt.Fprintln(e.stdout, "First circuit ready: browse away. Press Ctrl-C to stop.")
			ready = nil
			slow.Stop()
		case <-slow.C:
			fmt.Fprintln(e.stdout, "Still no circuit after a minute; run with --log-level info to see why.")
		case s := <-e.signals:
			if s == syscall.SIGHUP {
				log.Info("SIGHUP: the demo has no configuration file to reload")
				continue
			}
			if s == syscall.SIGUSR1 {
				d.client.NewIdentity()
				fmt.Fprintln(e.stdout, "New identity: new connections use new circuits.")
				continue
			}
			fmt.Fprintln(e.stdout, "Stopping.")
			return shutdown(e, func() error { d.close(); return nil })
		}
	}
}

// demo is a network in one process.
type demo struct {
	e      *env
	base   *config.Config
	dir    string
	relays []*node.Node
	exits  int
	client *node.Node
	tis    *tis.Server
	tisURL string
	codes  *tis.DemoMailer // the TIS's codes, for d.enroll
	tisDir string
	// view is the TCI view the TIS makes relay score statements from;
	// relay 0 keeps it fresh.
	view *trust.View
}

// startTIS runs the demo's TIS in this process on 127.0.0.1, in a new
// directory under the demo's (or reusing the one a --data run made), and
// turns certificate checks on for every node.
func (d *demo) startTIS() error {
	dir := filepath.Join(d.dir, "tis")
	if _, err := tis.Init(dir); err != nil && !errors.Is(err, tis.ErrExists) {
		return fmt.Errorf("TIS: %w", err)
	}
	root, err := tis.Open(dir)
	if err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	d.tisDir = dir
	d.view = trust.NewView(trust.ViewOptions{Root: root.PublicKey()})
	// Demo mode: the codes go to the log, and the demo enrolls its own
	// nodes with them (d.enroll).
	d.codes = &tis.DemoMailer{}
	srv, err := tis.NewServer(dir, tis.ServerOptions{EnrollRate: 100, EnrollBurst: 4 * demoMaxRelays, AddrRate: 100, AddrBurst: 4 * demoMaxRelays, Mailer: d.codes, RelayScorer: trust.TISScorer{View: d.view}})
	if err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	d.tis = srv
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("TIS: %w", err)
	}
	d.tisURL = tis.BaseURL(addr.String())
	d.base.TIS.RootKey = tis.FormatKey(srv.PublicKey())
	d.base.TIS.URL = d.tisURL
	d.base.TIS.Require = true
	d.base.Trust.Refresh = config.Duration(demoTrustRefresh)
	return nil
}

// enroll enrolls the node of cfg with the demo's TIS (again, with a kept
// --data directory: the same person and keys get fresh certificates).
func (d *demo) enroll(cfg *config.Config, name string) error {
	priv, err := node.LoadOrCreateIdentity(cfg.Node.DataDir)
	if err != nil {
		return err
	}
	if en, _, err := tis.LoadEnrollment(cfg.Node.DataDir); err == nil {
		id, err := peer.IDFromPrivateKey(priv)
		if err == nil && tis.VerifyNodeCert(en.NodeCert, d.tis.PublicKey(), id, time.Now().Add(time.Hour), nil) == nil {
			return nil // enrolled by an earlier run with this --data
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tis.NewClient(d.tisURL, d.tis.PublicKey())
	c.Code = d.codes.Code
	if _, err := c.EnrollNode(ctx, priv, cfg.Node.DataDir, name, name+"@demo.invalid", ""); err != nil {
		return fmt.Errorf("enroll %s: %w", name, err)
	}
	return nil
}

// start enrolls the relays, sets up the demo's trust records, starts the
// relays, the first one alone (the others join through it), then the
// client.
func (d *demo) start(n int) error {
	d.exits = max(2, (n+1)/2)
	cfgs := make([]*config.Config, n)
	for i := range n {
		cfg := d.base.Clone()
		cfg.Client.Enabled = false
		cfg.Client.StatusListen = ""
		cfg.Relay.Enabled = true
		cfg.Relay.Exit = i >= n-d.exits
		cfg.Node.DataDir = filepath.Join(d.dir, fmt.Sprintf("relay-%d", i))
		if err := d.enroll(cfg, fmt.Sprintf("relay-%d", i+1)); err != nil {
			return err
		}
		cfgs[i] = cfg
	}
	if err := d.trustRecords(cfgs); err != nil {
		return err
	}
	var boot []string
	for i, cfg := range cfgs {
		cfg.Node.Bootstrap = boot
		opts := node.Options{AllowSameSubnet: true}
		if i == 0 {
			opts.TrustView = d.view
		}
		nd, err := d.startNode(cfg, opts)
		if err != nil {
			return fmt.Errorf("relay %d: %w", i, err)
		}
		d.relays = append(d.relays, nd)
		if i == 0 {
			for _, a := range nd.Addrs() {
				boot = append(boot, a.String())
			}
		}
	}
	cfg := d.base.Clone()
	cfg.Node.Bootstrap = boot
	cfg.Node.DataDir = filepath.Join(d.dir, "client")
	if err := d.enroll(cfg, "demo-client"); err != nil {
		return err
	}
	nd, err := d.startNode(cfg, node.Options{AllowSameSubnet: true})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	d.client = nd
	return nil
}

// demoTrustRefresh is the demo's trust.refresh: short, so that the
// relays' trust statements show within seconds.
const demoTrustRefresh = 5 * time.Second

// demoVouches are the demo's vouches: (voucher, vouchee, weight) by relay
// index. The operators of relays 0 and 1 are the TIS's seeds; the rest
// get different scores: relay 2 is well vouched for (100), relay 3 less
// (21), relay 4 little (13), the others not at all.
var demoVouches = []struct{ from, to, weight int }{
	{0, 2, 100}, {0, 3, 40}, {1, 2, 100}, {1, 4, 20},
}

// trustRecords names the seeds in the TIS and writes the vouches into the
// voucher relays' data directories, as `pikcio tis seed add` and
// `pikcio trust vouch` would; the relays publish them when they start.
func (d *demo) trustRecords(cfgs []*config.Config) error {
	mids := make([]tis.ID, len(cfgs))
	for i, cfg := range cfgs {
		en, _, err := tis.LoadEnrollment(cfg.Node.DataDir)
		if err != nil {
			return err
		}
		mids[i] = en.MatryoshkaCert.ID
	}
	if err := tis.WriteSeeds(d.tisDir, mids[:2]); err != nil {
		return fmt.Errorf("TIS seeds: %w", err)
	}
	for _, v := range demoVouches {
		if v.to >= len(cfgs) {
			continue
		}
		dir := cfgs[v.from].Node.DataDir
		_, key, err := tis.LoadEnrollment(dir)
		if err != nil {
			return err
		}
		own, err := trust.LoadOwn(dir)
		if err != nil {
			return err
		}
		if _, err := own.Vouch(key, mids[v.from], mids[v.to], v.weight, 0, time.Now()); err != nil {
			return err
		}
		if err := own.Save(dir); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) startNode(cfg *config.Config, opts node.Options) (*node.Node, error) {
	nd, err := node.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		return nil, err
	}
	return nd, nil
}

func (d *demo) banner(temporary bool) {
	w := d.e.stdout
	fmt.Fprintf(w, "pikcio demo: %d relays (%d of them exits) and a client, all in this process on 127.0.0.1.\n",
		len(d.relays), d.exits)
	fmt.Fprintf(w, "Every node is enrolled with the demo's TIS at %s; only certified relays are used.\n", d.tisURL)
	fmt.Fprintln(w, "Relays 1 and 2 are run by the TIS's seed identities, who vouch for some others:")
	fmt.Fprintln(w, "the status page shows each hop's trust band (TCI) once the TIS has stated it.")
	fmt.Fprintln(w)
	socks := d.client.SOCKSAddr().String()
	fmt.Fprintf(w, "SOCKS5 proxy: %s\n", socks)
	host, port, _ := net.SplitHostPort(socks)
	fmt.Fprintln(w, "  Firefox: Settings > Network Settings > Manual proxy configuration,")
	fmt.Fprintf(w, "  SOCKS Host %s, Port %s, SOCKS v5, and tick \"Proxy DNS when using SOCKS v5\".\n", host, port)
	fmt.Fprintf(w, "  Chromium: chromium --proxy-server=socks5://%s\n", socks)
	if a := d.client.HTTPAddr(); a != nil {
		fmt.Fprintf(w, "HTTP proxy: %s\n", a)
	}
	if a := d.client.StatusAddr(); a != nil {
		fmt.Fprintf(w, "status page: http://%s/\n", a)
	}
	fmt.Fprintf(w, "  Try: curl --socks5-hostname %s https://example.com/\n", socks)
	if temporary {
		fmt.Fprintf(w, "data directory: %s (removed on exit)\n", d.dir)
	} else {
		fmt.Fprintf(w, "data directory: %s\n", d.dir)
	}
	fmt.Fprintln(w, "\nBuilding the first circuit...")
}

// close stops the client, then every relay at once, and waits for them.
func (d *demo) close() {
	if d.client != nil {
		_ = d.client.Close()
	}
	var wg sync.WaitGroup
	for _, r := range d.relays {
		wg.Go(func() { _ = r.Close() })
	}
	wg.Wait()
	if d.tis != nil {
		_ = d.tis.Close()
	}
}
