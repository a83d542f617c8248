package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
	"github.com/pikcio/pikcio/web"
)

// Node is one pikcio process's part in the network: a libp2p host with a
// client role, a relay role (possibly an exit), or both.
type Node struct {
	// extraOwnAddrs, set by tests, stands in for addresses only a NAT
	// would make peers observe.
	extraOwnAddrs atomic.Pointer[[]ma.Multiaddr]

	opts     Options
	log      *logrus.Entry
	dataDir  string
	unlock   func()
	host     host.Host
	cids     *circuit.Identities // a client's circuit identities (circuitid.go)
	disc     *discovery.Discovery
	client   bool
	exit     *exitnode.Exit // nil unless the node is an exit
	isRelay  bool
	tis      *tis.Agent        // nil without tis.root_key
	trust    *trust.Agent      // nil without tis.root_key
	invites  *exchange.Service // nil without tis.root_key
	require  bool              // tis.require: relays and previous hops must be enrolled
	admit    *token.Admission  // tokens: the client's wallet, the relay's guard
	activity *web.Activity
	metrics  *web.Metrics
	control  *control.Server // nil unless client.control_listen is set
	pool6    *proxy.Pool     // streams to IPv6 literals (ipv6.go)
	ipv6     bool            // relay.ipv6_exit on an exit

	hops     atomic.Int64
	joined   chan struct{}
	ready    chan struct{} // closed when the first circuit is built
	readyOne sync.Once
	keeper   *discovery.Keeper // a client's directory

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // guards what follows
	cfg       *config.Config
	state     int
	started   time.Time
	relay     *circuit.Relay
	cc        *circuit.Client
	builder   *discovery.Builder[*circuit.Circuit]
	pool      *proxy.Pool
	front     *proxy.Server
	svc       *service.Manager      // Matryoshka services (service.go)
	records   *circuit.RecordClient // a client's trust records, through circuits (records.go)
	svcRecs   *circuit.RecordClient // a client's service descriptors, through circuits (records.go)
	status    *web.Server
	socksAddr net.Addr
	httpAddr  net.Addr

	closeOnce sync.Once
	closeErr  error
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// New prepares a node from cfg: it checks cfg, creates the data
// directory (mode 0700) and the identity key (mode 0600) on first run,
// locks the directory, enrolls with the TIS on first start
// (Options.Enroll; ctx bounds it, so that SIGINT interrupts it), and
// starts the libp2p host listening. Nothing else runs before Start.
// Close releases what New took.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Node, error) {
	cfg = cfg.Clone()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if !cfg.Client.Enabled && !cfg.Relay.Enabled {
		return nil, ErrNoRole
	}
	n := &Node{
		opts:     opts,
		log:      logrus.WithField("component", "node"),
		cfg:      cfg,
		client:   cfg.Client.Enabled,
		isRelay:  cfg.Relay.Enabled,
		joined:   make(chan struct{}),
		ready:    make(chan struct{}),
		activity: web.NewActivity(),
		metrics:  newMetrics(),
		ipv6:     cfg.Relay.Enabled && cfg.Relay.Exit && cfg.Relay.IPv6Exit,
	}
	n.hops.Store(int64(cfg.Client.Hops))
	n.ctx, n.cancel = context.WithCancel(context.Background())

	ok := false
	defer func() {
		if !ok {
			n.release()
		}
	}()
	dir, err := cfg.Node.ResolveDataDir()
	if err != nil {
		return nil, err
	}
	warn, err := datadir.Prepare(dir)
	if err != nil {
		return nil, err
	}
	if warn != "" {
		n.log.Warn(warn)
	}
	n.dataDir = dir
	if n.unlock, err = datadir.Lock(dir); err != nil {
		return nil, err
	}
	priv, created, err := datadir.Identity(dir)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if n.tis, n.trust, err = loadTIS(ctx, cfg, dir, priv, id, opts.Enroll, opts.TrustView); err != nil {
		return nil, err
	}
	n.require = n.tis != nil && cfg.TIS.Require
	if n.admit, err = newAdmission(n.tis, dir, priv, id, n.client, n.isRelay, n.require); err != nil {
		return nil, err
	}
	announce, err := circuit.Announce(cfg.Node.Announce)
	if err != nil {
		return nil, fmt.Errorf("node.announce: %w", err)
	}
	if n.host, err = circuit.NewHost(priv, cfg.Node.Listen, cfg.Relay.RelayOptions(), append(announce, libp2p.PrometheusRegisterer(n.metrics.Registry))...); err != nil {
		return nil, err
	}
	if n.client {
		if n.cids, err = newCircuitIDs(cfg.Node.Listen, cfg.Relay.RelayOptions(), opts.CircuitIdentityPeriod); err != nil {
			return nil, err
		}
	}
	if n.tis != nil {
		if n.isRelay {
			// A relay's certificate is public (its descriptor carries
			// it); a client-only node shows its own to nobody.
			n.tis.Serve(n.host)
		}
		if n.invites, err = n.newExchange(); err != nil {
			return nil, fmt.Errorf("contact exchange: %w", err)
		}
	}
	if created {
		n.log.WithField("peer", n.host.ID().String()).Info("created a new node identity")
	}
	if n.isRelay && cfg.Relay.Exit {
		p, err := n.exitPolicy(cfg.Relay.ExitPolicy)
		if err != nil {
			return nil, err
		}
		n.exit = exitnode.New(exitnode.Options{Policy: p, Resolver: opts.ExitResolver})
	}
	if n.disc, err = discovery.New(n.host, n.discoveryOptions(cfg)...); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	sel := discovery.Selector{Self: n.host.ID(), AllowSameSubnet: opts.AllowSameSubnet}
	var possible func() // a relay-only node keeps its directory for EXTENDs, with no pool to start
	if n.client {
		possible = n.startPool
	}
	n.keeper = discovery.NewKeeper(n.disc, sel, func() int { return int(n.hops.Load()) }, possible, n.log)
	ok = true
	return n, nil
}

// bootstraps are the peers to join through: node.bootstrap, or else the
// ones the TIS gave at enrollment.
func (n *Node) bootstraps(cfg *config.Config) []string {
	if len(cfg.Node.Bootstrap) == 0 && n.tis != nil {
		return n.tis.Bootstraps()
	}
	return cfg.Node.Bootstrap
}

func (n *Node) discoveryOptions(cfg *config.Config) []discovery.Option {
	var opts []discovery.Option
	if boots := n.bootstraps(cfg); len(boots) > 0 {
		addrs := make([]ma.Multiaddr, 0, len(boots))
		for _, s := range boots {
			a, err := ma.NewMultiaddr(s) // checked by Validate
			if err == nil {
				addrs = append(addrs, a)
			}
		}
		opts = append(opts, discovery.Bootstrap(addrs...))
	}
	if n.isRelay {
		opts = append(opts, discovery.Publish(n.relayInfo))
	}
	opts = append(opts, discovery.Validator(service.Namespace, service.Validator{}))
	if n.tis != nil {
		opts = append(opts, discovery.Validator(tis.RevocationNamespace, tis.RevocationValidator{Root: n.tis.Root()}))
		opts = append(opts, discovery.Validator(trust.Namespace, n.trust.Validator()), discovery.WithWeigher(trustWeigher{n.trust}))
	}
	if n.client {
		opts = append(opts, discovery.DataDir(n.dataDir))
		if n.opts.AllowSameSubnet {
			opts = append(opts, discovery.AllowSameSubnet())
		}
		if n.require {
			opts = append(opts, discovery.VerifyRelay(n.verifyRelay))
		}
	} else {
		opts = append(opts, discovery.NoDiscovery())
	}
	return append(opts, n.opts.Discovery...)
}

// Start starts the node's roles: the relay serves circuits at once; the
// node joins the network through its bootstrap peers in the background,
// retrying until it can (Joined); a relay then publishes its descriptor;
// a client finds relays, opens its SOCKS5, HTTP proxy and status
// listeners (their addresses are known when Start returns) and builds its
// first circuits (Ready). ctx bounds Start itself, not the node's life.
func (n *Node) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	switch n.state {
	case stateStarted:
		n.mu.Unlock()
		return ErrStarted
	case stateClosed:
		n.mu.Unlock()
		return ErrClosed
	}
	n.state = stateStarted
	n.started = time.Now()
	err := n.startRoles(ctx, n.cfg)
	if err == nil {
		// Under n.mu, so that a Close waits for them.
		n.wg.Go(n.run)
		n.wg.Go(n.sampleLoop)
		if r := n.relay; r != nil {
			n.wg.Go(func() { r.KeepOnionKey(n.ctx, circuit.OnionKeyCheck, n.disc.Republish) })
		}
		if n.exit != nil {
			// Subscribed before Start returns, so that no change of
			// address between now and the loop's start is missed.
			if sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated)); err != nil {
				n.log.WithError(err).Warn("watch own addresses")
			} else {
				last := n.ownAddrs()
				n.wg.Go(func() { n.keepExitAddrs(sub, last) })
			}
		}
		if err := datadir.WriteAddrs(n.dataDir, n.Addrs()); err != nil {
			n.log.WithError(err).Warn("write the node's addresses for the CLI")
		}
		if n.tis != nil {
			n.wg.Go(func() { n.tis.KeepRevocations(n.ctx, n.disc, n.revocationsChanged) })
			n.wg.Go(func() {
				select {
				case <-n.joined:
					n.trust.Keep(n.ctx, n.trustStore())
				case <-n.ctx.Done():
				}
			})
			if n.isRelay && n.tis.URL() != "" {
				n.wg.Go(func() { n.trust.KeepRelayScore(n.ctx, n.disc.Republish) })
			}
		}
	}
	n.mu.Unlock()
	if err != nil {
		_ = n.Close()
		return err
	}
	return nil
}

// startRoles creates the role objects; n.mu is held.
func (n *Node) startRoles(ctx context.Context, cfg *config.Config) error {
	if n.isRelay {
		ro := cfg.Relay.RelayOptions()
		if n.exit != nil {
			ro.Exit = n.exit
		}
		if n.require {
			ro.AdmitCircuit = n.admit.Admit
		}
		ro.ResolveHop = n.disc.RelayAddrs // extend only to verified relays
		ro.AllowPrivateAddrs = circuit.AllowPrivateFor(cfg.Node.Listen)
		if n.dataDir != "" {
			ro.OnionKeyFile = filepath.Join(n.dataDir, circuit.OnionKeysFile)
		}
		r, err := circuit.NewRelay(n.host, ro)
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		n.relay = r
		n.serveRecords(r)
		what := "relay"
		if n.exit != nil {
			what = "exit relay"
		}
		n.log.Infof("%s serving circuits", what)
	}
	if n.client {
		warnShortCircuits(n.log, cfg.Client.Hops)
		n.cc = n.cids.Start(n.clientOptions(), n.circuitIdentityExpired)
		n.builder = discovery.NewBuilder(n.disc, timeBuilds(n.metrics, n.buildPath), discovery.BuilderOptions{})
		n.pool = proxy.NewPool(n.buildCircuit, cfg.Client.PoolOptions())
		n.records = n.newTrustRecords()
		n.svcRecs = circuit.NewRecordClient(n.buildRecordCircuit, circuit.RecordClientOptions{})
		n.pool6 = newIPv6Pool(n, cfg.Client.PoolOptions())
		svc, err := n.newServices(cfg)
		if err != nil {
			return err
		}
		n.svc = svc
		d := proxy.TimeFirstByte(proxy.SplitIPv6(proxy.RecordFailures(n.pool, n.activity.Record), n.pool6), n.metrics.ObserveFirstByte)
		n.front = proxy.NewServer(proxy.WithResolver(d, n.pool), proxy.ServerOptions{SOCKSEarlySuccess: cfg.Client.SOCKSEarlySuccess, Services: svc})
		if cfg.Client.SOCKSListen != "" {
			if n.socksAddr, err = n.front.ListenSOCKS(cfg.Client.SOCKSListen); err != nil {
				return fmt.Errorf("SOCKS5 proxy: %w", err)
			}
		}
		if cfg.Client.HTTPListen != "" {
			if n.httpAddr, err = n.front.ListenHTTP(cfg.Client.HTTPListen); err != nil {
				return fmt.Errorf("HTTP proxy: %w", err)
			}
		}
	}
	if cfg.Client.StatusListen != "" {
		h := web.NewHandler(statusSource{n}, web.Options{
			Extra:   map[string]http.Handler{web.TrustPath: web.TrustHandler(n.TrustReport)},
			Metrics: n.metrics.Registry,
		})
		s, err := web.Listen(ctx, cfg.Client.StatusListen, h)
		if err != nil {
			return fmt.Errorf("status page: %w", err)
		}
		n.status = s
	}
	return n.startControl(cfg.Client.ControlListen)
}

// run joins the network, then keeps the relay directory: a client's, for
// its paths, and a relay's, so that an EXTEND finds the next hop's
// verified addresses at once instead of in a DHT lookup (which waits on
// every dead peer near the key: two seconds per new next hop when a relay
// of the network has just died).
func (n *Node) run() {
	if !n.join() {
		return
	}
	close(n.joined)
	if n.client || n.isRelay {
		n.keeper.Run(n.ctx)
	}
}

// join starts discovery, retrying while no bootstrap peer can be reached.
// It reports false if the node closed first.
func (n *Node) join() bool {
	err := n.disc.Join(n.ctx, func(err error, retryIn time.Duration) {
		n.log.WithError(err).Warnf("joining the network failed; retrying in %v", retryIn)
	})
	if err != nil {
		return false
	}
	n.mu.Lock()
	boots := len(n.bootstraps(n.cfg))
	n.mu.Unlock()
	if boots == 0 {
		n.log.Info("no bootstrap peers: other nodes join the network through this one")
	} else {
		n.log.Info("joined the network")
	}
	return true
}

// relayInfo is what the relay publishes about itself.
func (n *Node) relayInfo() (discovery.RelayInfo, error) {
	n.mu.Lock()
	r := n.relay
	n.mu.Unlock()
	if r == nil {
		return discovery.RelayInfo{}, errors.New("relay not started")
	}
	k := r.OnionKey()
	info := discovery.RelayInfo{
		Flags:    discovery.FlagRelay | discovery.FlagGuard,
		OnionKey: discovery.OnionKey{Key: k.Public, Expires: k.Expires},
	}
	if n.exit != nil {
		info.Flags |= discovery.FlagExit
		info.ExitPorts = discovery.PortSummary(n.exit.Policy().AcceptsPort)
	}
	if n.tis != nil {
		info.Extensions = []discovery.Extension{{Type: tis.DescriptorExtension, Data: n.tis.Certificate()}}
		if st, ok := n.trust.Statement(); ok {
			info.Extensions = append(info.Extensions, discovery.Extension{Type: trust.DescriptorExtension, Data: st})
		}
	}
	if n.ipv6 {
		info.Extensions = append(info.Extensions, discovery.IPv6ExitExtension())
	}
	return info, nil
}

// revocationsChanged runs when a newer revocation list arrived: a client
// drops the relays it revokes from its directory at once.
func (n *Node) revocationsChanged() {
	if n.client {
		if k := n.disc.Recheck(); k > 0 {
			n.log.WithField("relays", k).Info("relays dropped after a revocation")
		}
	}
}

// exitPolicy builds the exit policy: the operator's rules, then the
// default policy, which also rejects the node's own addresses.
func (n *Node) exitPolicy(rules []string) (*exitnode.Policy, error) {
	parsed, err := exitnode.ParseRules(rules)
	if err != nil {
		return nil, fmt.Errorf("exit policy: %w", err)
	}
	return exitnode.NewPolicy(parsed, n.ownAddrs()), nil
}

// Close stops every role and waits for everything the node started, then
// closes the host and unlocks the data directory. It is idempotent; every
// call waits and returns the same error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.state = stateClosed
		n.mu.Unlock()
		n.cancel()
		n.wg.Wait()
		n.closeErr = n.release()
	})
	return n.closeErr
}

// release closes the parts in dependency order: front ends before the
// pool and its circuits, the DHT before the host.
func (n *Node) release() error {
	n.cancel()
	n.mu.Lock()
	front, pool, cc, status, relay, ctl := n.front, n.pool, n.cc, n.status, n.relay, n.control
	pool6, svc, records, svcRecs := n.pool6, n.svc, n.records, n.svcRecs
	n.mu.Unlock()
	var errs []error
	if ctl != nil {
		errs = append(errs, ctl.Close())
	}
	if status != nil {
		errs = append(errs, status.Close())
	}
	if front != nil {
		errs = append(errs, front.Close())
	}
	if svc != nil {
		errs = append(errs, svc.Close())
	}
	if pool != nil {
		errs = append(errs, pool.Close())
	}
	if pool6 != nil {
		errs = append(errs, pool6.Close())
	}
	if records != nil {
		records.Close()
	}
	if svcRecs != nil {
		svcRecs.Close()
	}
	if cc != nil {
		errs = append(errs, cc.Close())
	}
	errs = append(errs, n.admit.Close())
	if n.disc != nil {
		errs = append(errs, n.disc.Close())
	}
	if n.invites != nil {
		errs = append(errs, n.invites.Close())
	}
	if n.dataDir != "" && n.state == stateClosed {
		datadir.RemoveAddrs(n.dataDir)
	}
	if relay != nil {
		errs = append(errs, relay.Close())
	}
	if n.cids != nil {
		errs = append(errs, n.cids.Close())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.unlock != nil {
		n.unlock()
	}
	return errors.Join(errs...)
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs are the node's listen addresses with /p2p/<peer ID>: what other
// nodes take as a bootstrap address.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// SOCKSAddr, HTTPAddr and StatusAddr are the listeners' addresses once
// Start returned, nil for a listener the node does not run.
func (n *Node) SOCKSAddr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.socksAddr
}

// HTTPAddr: see SOCKSAddr.
func (n *Node) HTTPAddr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.httpAddr
}

// StatusAddr: see SOCKSAddr.
func (n *Node) StatusAddr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.status == nil {
		return nil
	}
	return n.status.Addr()
}

// NewIdentity retires every circuit of the client for new streams (open
// streams continue), so that what follows cannot be linked to what went
// before by its circuits. It reports false on a node without a client.
// The status page and SIGUSR1 call it.
func (n *Node) NewIdentity() bool {
	n.mu.Lock()
	p, p6 := n.pool, n.pool6
	n.mu.Unlock()
	if p == nil {
		return false
	}
	if err := n.rotateCircuitIdentity(); err != nil {
		n.log.WithError(err).Warn("new circuit identity")
	}
	p.NewIdentity()
	p6.NewIdentity()
	n.publish(control.Event{Type: control.EventNewIdentity})
	return true
}

// Joined is closed once the node has joined the network (at once for a
// node without bootstrap peers, which others join through).
func (n *Node) Joined() <-chan struct{} { return n.joined }

// Ready is closed when a client built its first circuit.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Config returns a copy of the configuration in force.
func (n *Node) Config() *config.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg.Clone()
}
