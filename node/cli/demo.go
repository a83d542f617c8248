package cli

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
)

// pikcio demo --relays: default and limits (localnet's).
const demoDefaultRelays = 5

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
	relays := fs.Int("relays", demoDefaultRelays, fmt.Sprintf("number of relays, %d to %d", localnet.MinRelays, localnet.MaxRelays))
	def := config.Default().Client
	socks := fs.String("socks", def.SOCKSListen, "SOCKS5 proxy `address` host:port")
	httpAddr := fs.String("http", def.HTTPListen, "HTTP proxy `address` host:port; \"\" turns it off")
	status := fs.String("status", def.StatusListen, "status page `address` host:port; \"\" turns it off")
	var policy policyFlag
	fs.Var(&policy, "exit-policy", "exit `rules` placed before the default policy, comma-separated, e.g. 'accept 127.0.0.1:*' to reach servers on this machine; repeatable")
	data := fs.String("data", "", "`directory` for the nodes' keys and state, kept after exit (default: a temporary directory, removed on exit)")
	logLevel := fs.String("log-level", "warn", "log `level`: trace, debug, info, warn or error")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *relays < localnet.MinRelays || *relays > localnet.MaxRelays {
		return usageError(e, fs, "--relays %d: want %d to %d", *relays, localnet.MinRelays, localnet.MaxRelays)
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

	ctx, stop := signalContext(e, 5*time.Minute) // Ctrl-C interrupts the start
	ln, err := localnet.Start(ctx, localnet.Options{Dir: dir, Relays: *relays, Base: base, DemoService: true})
	stop()
	if err != nil {
		fmt.Fprintf(e.stderr, "pikcio demo: %v\n", err)
		return exitError
	}
	d := &demo{e: e, dir: dir, net: ln}
	d.client = ln.Client
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
			return shutdown(e, func() error { _ = ln.Close(); return nil })
		}
	}
}

// demo is the network the demo runs.
type demo struct {
	e      *env
	dir    string
	net    *localnet.Network
	client *node.Node
}

func (d *demo) banner(temporary bool) {
	w := d.e.stdout
	fmt.Fprintf(w, "pikcio demo: %d relays (%d of them exits) and a client, all in this process on 127.0.0.1.\n",
		len(d.net.Relays), d.net.Exits)
	fmt.Fprintf(w, "Every node is enrolled with the demo's TIS at %s; only certified relays are used.\n", d.net.TISURL)
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
	fmt.Fprintf(w, "  Without internet access: curl --socks5-hostname %s http://%s.pikcio/\n", socks, localnet.DemoServiceName)
	fmt.Fprintln(w, "  (a Matryoshka service the client publishes: a page on what each hop could see; no exit involved)")
	if temporary {
		fmt.Fprintf(w, "data directory: %s (removed on exit)\n", d.dir)
	} else {
		fmt.Fprintf(w, "data directory: %s\n", d.dir)
	}
	fmt.Fprintln(w, "\nBuilding the first circuit...")
}
