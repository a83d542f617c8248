package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/node"
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
and serves a SOCKS5 proxy, an HTTP proxy and a status page. Point a browser
at the SOCKS5 proxy. Ctrl-C stops everything.

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
}

// start starts the relays, the first one alone (the others join through
// it), then the client.
func (d *demo) start(n int) error {
	d.exits = max(2, (n+1)/2)
	var boot []string
	for i := range n {
		cfg := d.base.Clone()
		cfg.Client.Enabled = false
		cfg.Client.StatusListen = ""
		cfg.Relay.Enabled = true
		cfg.Relay.Exit = i >= n-d.exits
		cfg.Node.Bootstrap = boot
		cfg.Node.DataDir = filepath.Join(d.dir, fmt.Sprintf("relay-%d", i))
		nd, err := d.startNode(cfg)
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
	nd, err := d.startNode(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	d.client = nd
	return nil
}

func (d *demo) startNode(cfg *config.Config) (*node.Node, error) {
	nd, err := node.New(cfg, node.Options{AllowSameSubnet: true})
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
	fmt.Fprintf(w, "pikcio demo: %d relays (%d of them exits) and a client, all in this process on 127.0.0.1.\n\n",
		len(d.relays), d.exits)
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
}
