package cli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/tis"
)

// shutdownTimeout bounds a node's Close after a signal; a second SIGINT
// or SIGTERM stops at once.
const shutdownTimeout = 10 * time.Second

// policyFlag collects exit policy rules: comma- or newline-separated, the
// flag repeatable. Each rule is checked as it is set.
type policyFlag []string

func (p *policyFlag) String() string { return strings.Join(*p, ", ") }

func (p *policyFlag) Set(s string) error {
	rules := exitnode.SplitRules(s)
	if _, err := exitnode.ParseRules(rules); err != nil {
		return err
	}
	*p = append(*p, rules...)
	return nil
}

// nodeFlags are the flags of the client and relay commands. Each one set
// on the command line overrides the configuration file, also on reload.
type nodeFlags struct {
	fs              *flagSet
	configPath      string
	dataDir         string
	listen          listFlag
	bootstrap       listFlag
	logLevel        string
	logFormat       string
	enrollName      string
	enrollEmail     string
	enrollCode      string
	allowSameSubnet bool
	status          string
	announce        listFlag

	// client
	socks   string
	http    string
	control string
	hops    int

	// relay
	exit       bool
	ipv6Exit   bool
	exitPolicy policyFlag
}

func (f *nodeFlags) common(fs *flagSet) {
	f.fs = fs
	fs.StringVar(&f.configPath, "config", "", "configuration `file` (see pikcio.example.toml); it is re-read when it changes and on SIGHUP")
	fs.StringVar(&f.dataDir, "data", "", "data `directory` for the node's key and state (default $XDG_DATA_HOME/pikcio)")
	fs.Var(&f.listen, "listen", "libp2p listen `multiaddr`; repeatable or comma-separated (default /ip4/127.0.0.1/tcp/0 and /ip4/127.0.0.1/udp/0/quic-v1)")
	fs.Var(&f.announce, "announce", "`multiaddr` to advertise instead of the listen addresses (a relay behind a port forward); repeatable or comma-separated")
	fs.Var(&f.bootstrap, "bootstrap", "`multiaddr` ending in /p2p/<peer id> of a node to join the network through; repeatable or comma-separated")
	fs.StringVar(&f.logLevel, "log-level", "", "log `level`: trace, debug, info, warn or error (default info)")
	fs.StringVar(&f.logFormat, "log-format", "", "log `format`: text or json (default text)")
	fs.StringVar(&f.enrollName, "enroll-name", "", "`name` to enroll with at the TIS (tis.url) on the first start, when the data directory holds no enrollment; never stored, ignored once enrolled; needs --enroll-email")
	fs.StringVar(&f.enrollEmail, "enroll-email", "", "`e-mail` to enroll with at the TIS on the first start; never stored; needs --enroll-name")
	fs.StringVar(&f.enrollCode, "enroll-code", "", "the `code` the TIS mailed to --enroll-email (a first start without it asks the TIS to mail one and stops)")
}

// enrollee is the person of --enroll-name and --enroll-email, or nil.
func (f *nodeFlags) enrollee() *node.Enrollee {
	if f.enrollName == "" && f.enrollEmail == "" {
		return nil
	}
	return &node.Enrollee{Name: f.enrollName, Email: f.enrollEmail, Code: f.enrollCode}
}

func (f *nodeFlags) isSet(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			set = true
		}
	})
	return set
}

// override turns the flags that were set into a config.Override.
func (f *nodeFlags) override(role func(c *config.Config)) config.Override {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	listen := append([]string(nil), f.listen...)
	bootstrap := append([]string(nil), f.bootstrap...)
	announce := append([]string(nil), f.announce...)
	policy := append([]string(nil), f.exitPolicy...)
	v := *f
	return func(c *config.Config) {
		role(c)
		if set["data"] {
			c.Node.DataDir = v.dataDir
		}
		if set["listen"] {
			c.Node.Listen = append([]string(nil), listen...)
		}
		if set["bootstrap"] {
			c.Node.Bootstrap = append([]string(nil), bootstrap...)
		}
		if set["announce"] {
			c.Node.Announce = append([]string(nil), announce...)
		}
		if set["control"] {
			c.Client.ControlListen = v.control
		}
		if set["log-level"] {
			c.Log.Level = v.logLevel
		}
		if set["log-format"] {
			c.Log.Format = v.logFormat
		}
		if set["status"] {
			c.Client.StatusListen = v.status
		}
		if set["socks"] {
			c.Client.SOCKSListen = v.socks
		}
		if set["http"] {
			c.Client.HTTPListen = v.http
		}
		if set["hops"] {
			c.Client.Hops = v.hops
		}
		if set["exit"] && v.exit {
			c.Relay.Exit = true
		}
		if set["ipv6-exit"] {
			c.Relay.IPv6Exit = v.ipv6Exit
		}
		if set["exit-policy"] {
			c.Relay.ExitPolicy = append([]string(nil), policy...)
		}
	}
}

func runClient(e *env, args []string) int {
	var f nodeFlags
	def := config.Default().Client
	fs := newFlagSet("client", "[flags]", fmt.Sprintf(`Run the client: a SOCKS5 proxy (default %s), an HTTP proxy
(default %s) and a status page (default %s), whose
connections go through circuits of relays found in the network joined
through --bootstrap. Flags override the configuration file.`, def.SOCKSListen, def.HTTPListen, def.StatusListen))
	f.common(fs)
	fs.StringVar(&f.socks, "socks", "", "SOCKS5 proxy `address` host:port; \"\" turns it off (default "+def.SOCKSListen+")")
	fs.StringVar(&f.http, "http", "", "HTTP proxy `address` host:port; \"\" turns it off (default "+def.HTTPListen+")")
	fs.StringVar(&f.status, "status", "", "status page `address` host:port; \"\" turns it off (default "+def.StatusListen+")")
	fs.StringVar(&f.control, "control", "", "control API `address`: host:port on loopback or unix:PATH; its cookie is control.cookie in the data directory (default: off)")
	fs.IntVar(&f.hops, "hops", 0, fmt.Sprintf("relays in each circuit, 1 to %d (default %d)", circuit.MaxHops, def.Hops))
	fs.BoolVar(&f.allowSameSubnet, "allow-same-subnet", false, "let one circuit use relays of the same IPv4 /16 or IPv6 /32: only for a network on one machine or one LAN")
	if code, done := parse(e, fs, args); done {
		return code
	}
	ov := f.override(func(c *config.Config) {
		c.Client.Enabled = true
		c.Relay.Enabled = false
	})
	return runNode(e, &f, ov)
}

func runRelay(e *env, args []string) int {
	var f nodeFlags
	fs := newFlagSet("relay", "[--exit] [flags]", `Run a relay: it carries circuits for others and publishes its signed
descriptor in the network's DHT. With --exit it is also an exit relay that
connects to destinations, under its exit policy. A relay without
--bootstrap is a network's first node, that others join through: it prints
the addresses to give them as --bootstrap. Flags override the
configuration file.`)
	f.common(fs)
	fs.BoolVar(&f.exit, "exit", false, "be an exit relay: open connections to destinations")
	fs.BoolVar(&f.ipv6Exit, "ipv6-exit", false, "say in the descriptor that this exit reaches IPv6 destinations: clients choose it for IPv6 literals")
	fs.Var(&f.exitPolicy, "exit-policy", "exit `rules` checked before the default policy, comma-separated, e.g. 'accept 127.0.0.1:*, reject *:25'; repeatable")
	fs.StringVar(&f.status, "status", "", "status page `address` host:port (default: none)")
	if code, done := parse(e, fs, args); done {
		return code
	}
	statusSet := f.isSet("status")
	ov := f.override(func(c *config.Config) {
		c.Relay.Enabled = true
		c.Client.Enabled = false
		c.Client.SOCKSListen = ""
		c.Client.HTTPListen = ""
		if !statusSet {
			c.Client.StatusListen = ""
		}
	})
	return runNode(e, &f, ov)
}

// runNode loads the configuration, runs the node until SIGINT or SIGTERM,
// and reloads the configuration file on SIGHUP.
func runNode(e *env, f *nodeFlags, ov config.Override) int {
	name := f.fs.Name()
	var (
		cfg     *config.Config
		watcher *config.Watcher
		nd      *node.Node
		ready   = make(chan struct{})
	)
	if f.configPath != "" {
		w, err := config.NewWatcher(f.configPath, ov, func(prev, next *config.Config) error {
			<-ready // no reload before the node exists
			return nd.Apply(prev, next)
		}, nil)
		if err != nil {
			return configError(e, name, err)
		}
		watcher = w
		cfg = w.Current()
	} else {
		cfg = config.Default()
		ov(cfg)
		if err := cfg.Validate(); err != nil {
			return configError(e, name, err)
		}
	}
	if watcher != nil {
		defer watcher.Close()
	}
	if f.isSet("exit-policy") && !cfg.Relay.Exit {
		return usageError(e, f.fs, "--exit-policy needs --exit (or relay.exit = true in the configuration file)")
	}
	if (f.enrollName == "") != (f.enrollEmail == "") {
		return usageError(e, f.fs, "--enroll-name and --enroll-email go together")
	}
	if f.enrollee() != nil && (cfg.TIS.RootKey == "" || cfg.TIS.URL == "") {
		return usageError(e, f.fs, "--enroll-name and --enroll-email need tis.root_key and tis.url in the configuration file")
	}
	if err := node.SetupLogging(cfg.Log); err != nil {
		return configError(e, name, err)
	}
	log := logrus.WithField("component", "cli")

	// SIGINT or SIGTERM interrupts a first-start enrollment.
	nctx, ncancel := signalContext(e, 2*tis.EnrollTimeout)
	nd, err := node.New(nctx, cfg, node.Options{AllowSameSubnet: f.allowSameSubnet, Enroll: f.enrollee()})
	ncancel()
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitError
	}
	close(ready)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = nd.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		_ = nd.Close()
		return exitError
	}
	if watcher != nil {
		if err := watcher.Start(); err != nil {
			log.WithError(err).Warn("not watching the configuration file; SIGHUP still reloads it")
		}
	}
	printNode(e, nd, cfg)

	readyc := nd.Ready()
	if !cfg.Client.Enabled {
		readyc = nil
	}
	for {
		select {
		case <-readyc:
			fmt.Fprintln(e.stdout, "circuit ready")
			readyc = nil
		case s := <-e.signals:
			if s == syscall.SIGUSR1 {
				if nd.NewIdentity() {
					log.Info("SIGUSR1: new identity: every circuit retired for new connections")
				}
				continue
			}
			if s == syscall.SIGHUP {
				if watcher == nil {
					log.Warn("SIGHUP: no --config file to reload")
					continue
				}
				log.Info("SIGHUP: reloading the configuration")
				_ = watcher.Reload() // it logs what went wrong
				continue
			}
			log.Infof("%v: stopping", s)
			if watcher != nil {
				_ = watcher.Close()
			}
			return shutdown(e, func() error { return nd.Close() })
		}
	}
}

// shutdown runs closeFn, bounded by shutdownTimeout and by a second
// signal.
func shutdown(e *env, closeFn func() error) int {
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				logrus.WithField("component", "cli").WithError(err).Debug("shutdown")
			}
			return exitOK
		case <-t.C:
			fmt.Fprintln(e.stderr, "pikcio: shutdown timed out")
			if logrus.IsLevelEnabled(logrus.DebugLevel) {
				// What the shutdown still waits for.
				_ = pprof.Lookup("goroutine").WriteTo(e.stderr, 1)
			}
			return exitError
		case s := <-e.signals:
			if s != syscall.SIGHUP && s != syscall.SIGUSR1 {
				fmt.Fprintln(e.stderr, "pikcio: stopped before shutdown finished")
				return exitError
			}
		}
	}
}

func printNode(e *env, nd *node.Node, cfg *config.Config) {
	fmt.Fprintf(e.stdout, "peer ID: %s\n", nd.ID())
	fmt.Fprintf(e.stdout, "data directory: %s\n", nd.DataDir())
	if cfg.Relay.Enabled {
		what := "relay"
		if cfg.Relay.Exit {
			what = "exit relay"
		}
		fmt.Fprintf(e.stdout, "%s running; its addresses (give one to other nodes as --bootstrap):\n", what)
		for _, a := range nd.Addrs() {
			fmt.Fprintf(e.stdout, "relay address: %s\n", a)
		}
	}
	if a := nd.SOCKSAddr(); a != nil {
		fmt.Fprintf(e.stdout, "SOCKS5 proxy: %s\n", a)
	}
	if a := nd.HTTPAddr(); a != nil {
		fmt.Fprintf(e.stdout, "HTTP proxy: %s\n", a)
	}
	if a := nd.ControlAddr(); a != "" {
		fmt.Fprintf(e.stdout, "control API: %s (cookie in %s)\n", a, filepath.Join(nd.DataDir(), control.CookieFile))
	}
	if a := nd.StatusAddr(); a != nil {
		fmt.Fprintf(e.stdout, "status page: http://%s/\n", a)
	}
}

// configError reports a configuration that does not load or validate,
// one problem per line.
func configError(e *env, name string, err error) int {
	problems := config.Problems(err)
	if len(problems) == 0 {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitUsage
	}
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, p)
	}
	return exitUsage
}
