package discovery

import (
	"errors"
	"fmt"
	record "github.com/libp2p/go-libp2p-record"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of the options.
const (
	// DefaultRefreshInterval is how often a node looks for relays.
	DefaultRefreshInterval = 10 * time.Minute
	// DefaultRepublishInterval is how often a relay republishes its
	// descriptor.
	DefaultRepublishInterval = time.Hour
	// DefaultDescriptorLifetime is how long a descriptor is valid. It is
	// also the age after which DHT nodes drop descriptor and provider
	// records, and how long a missing guard is kept.
	DefaultDescriptorLifetime = 3 * time.Hour
	// DefaultRetryInterval is how soon a failed publication is retried.
	DefaultRetryInterval = 30 * time.Second
	// DefaultWalkSize is the number of random-key lookups of a random walk.
	DefaultWalkSize = 4
	// DefaultFetchConcurrency bounds concurrent descriptor look-ups.
	DefaultFetchConcurrency = 8
	// DefaultFetchTimeout bounds one descriptor look-up.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultMaxSkew is how far in the future a descriptor's publication
	// time may be.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultGuards is the size of the guard set: a primary and two
	// backups.
	DefaultGuards = 3
	// DefaultMaxGuardFailures is the number of consecutive failures after
	// which a guard is replaced.
	DefaultMaxGuardFailures = 3
	// DefaultGuardLifetimeMin and Max bound a guard's random lifetime.
	DefaultGuardLifetimeMin = 30 * 24 * time.Hour
	DefaultGuardLifetimeMax = 60 * 24 * time.Hour
	// DefaultDownTime is the longest a relay named as the failing hop of
	// a build is not chosen: 30 s the first time, doubling with each
	// failure before it works again. A newer descriptor lifts the mark.
	DefaultDownTime = 10 * time.Minute
	// DefaultSuspectTime is how long the non-guard relays of a path whose
	// build failed without naming a hop (a timeout) are not chosen.
	DefaultSuspectTime = 2 * time.Minute
	// DefaultProtocol is the circuit protocol version relays announce.
	DefaultProtocol = 1
)

// ProtocolPrefix is the prefix of pikcio's own DHT protocol
// (/pikcio/kad/1.0.0): it never joins the public IPFS DHT.
const ProtocolPrefix = "/pikcio"

// Strategy says how a node finds relays; see the package documentation.
type Strategy uint8

// Discovery strategies.
const (
	// StrategyBoth uses provider records and a random walk.
	StrategyBoth Strategy = iota
	// StrategyProviders asks for the providers of the relay key.
	StrategyProviders
	// StrategyWalk looks up random keys and asks every peer it meets.
	StrategyWalk
)

func (s Strategy) providers() bool { return s == StrategyBoth || s == StrategyProviders }
func (s Strategy) walk() bool      { return s == StrategyBoth || s == StrategyWalk }

// RelayInfo is what a relay says about itself. Publish fills in the peer
// ID, addresses, times and signature.
type RelayInfo struct {
	Flags        Flags
	Protocol     uint16 // 0 means DefaultProtocol
	OnionKey     OnionKey
	PrevOnionKey *OnionKey
	ExitPorts    []PortRange
	Extensions   []Extension
}

// RelayInfoFunc returns the relay's current information. It is called at
// every publication, so a rotated onion key is picked up.
type RelayInfoFunc func() (RelayInfo, error)

type options struct {
	bootstrap         []peer.AddrInfo
	dataDir           string
	relayInfo         RelayInfoFunc
	server            bool
	discover          bool
	addrs             func() []ma.Multiaddr
	refreshInterval   time.Duration
	republishInterval time.Duration
	lifetime          time.Duration
	retryInterval     time.Duration
	strategy          Strategy
	walkSize          int
	fetchConcurrency  int
	fetchTimeout      time.Duration
	maxSkew           time.Duration
	allowSameSubnet   bool
	weigher           Weigher
	guards            guardConfig
	downTime          time.Duration
	suspectTime       time.Duration
	now               func() time.Time
	verifyRelay       func(*Descriptor) error
	validators        map[string]record.Validator
}

func defaults() options {
	return options{
		discover:          true,
		refreshInterval:   DefaultRefreshInterval,
		republishInterval: DefaultRepublishInterval,
		lifetime:          DefaultDescriptorLifetime,
		retryInterval:     DefaultRetryInterval,
		strategy:          StrategyBoth,
		walkSize:          DefaultWalkSize,
		fetchConcurrency:  DefaultFetchConcurrency,
		fetchTimeout:      DefaultFetchTimeout,
		maxSkew:           DefaultMaxSkew,
		weigher:           UniformWeigher{},
		guards: guardConfig{
			n:           DefaultGuards,
			maxFailures: DefaultMaxGuardFailures,
			lifetimeMin: DefaultGuardLifetimeMin,
			lifetimeMax: DefaultGuardLifetimeMax,
			absentLimit: DefaultDescriptorLifetime,

			pbMinCircuits: DefaultPathBiasMinCircuits,
			pbMaxFailRate: DefaultPathBiasMaxFailRate,
		},
		downTime:    DefaultDownTime,
		suspectTime: DefaultSuspectTime,
		now:         time.Now,
	}
}

// Option configures a Discovery.
type Option func(*options) error

var errOption = errors.New("invalid option")

func positive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s %v: %w", name, d, errOption)
	}
	return nil
}

// Bootstrap sets the DHT peers to join through, as multiaddrs ending in
// /p2p/<peer ID>. There is no default: a node without bootstrap peers only
// learns of the peers that connect to it.
func Bootstrap(addrs ...ma.Multiaddr) Option {
	return func(o *options) error {
		infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
		if err != nil {
			return fmt.Errorf("bootstrap addresses: %w", err)
		}
		o.bootstrap = append(o.bootstrap, infos...)
		return nil
	}
}

// DataDir sets the directory that keeps the guard file. Without one the
// guards live in memory only.
func DataDir(dir string) Option {
	return func(o *options) error { o.dataDir = dir; return nil }
}

// Publish makes the node a relay: it serves the DHT and publishes its
// descriptor, built from f, at Start and every republish interval.
func Publish(f RelayInfoFunc) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("nil relay info: %w", errOption)
		}
		o.relayInfo, o.server = f, true
		return nil
	}
}

// Server makes the DHT answer queries (a bootstrap node) without
// publishing a descriptor. Relays are servers anyway; clients are not.
func Server() Option {
	return func(o *options) error { o.server = true; return nil }
}

// NoDiscovery turns the periodic relay refresh off (a bootstrap node or a
// relay that builds no circuits of its own).
func NoDiscovery() Option {
	return func(o *options) error { o.discover = false; return nil }
}

// RefreshInterval sets how often relays are looked for (default
// DefaultRefreshInterval).
func RefreshInterval(d time.Duration) Option {
	return func(o *options) error { o.refreshInterval = d; return positive("refresh interval", d) }
}

// RepublishInterval sets how often a relay republishes (default
// DefaultRepublishInterval).
func RepublishInterval(d time.Duration) Option {
	return func(o *options) error { o.republishInterval = d; return positive("republish interval", d) }
}

// DescriptorLifetime sets how long published descriptors are valid and DHT
// records kept (default DefaultDescriptorLifetime, at most MaxLifetime).
func DescriptorLifetime(d time.Duration) Option {
	return func(o *options) error {
		if d > MaxLifetime {
			return fmt.Errorf("descriptor lifetime %v over %v: %w", d, MaxLifetime, errOption)
		}
		o.lifetime, o.guards.absentLimit = d, d
		return positive("descriptor lifetime", d)
	}
}

// WithStrategy sets the discovery strategy (default StrategyBoth).
func WithStrategy(s Strategy) Option {
	return func(o *options) error {
		if s > StrategyWalk {
			return fmt.Errorf("strategy %d: %w", s, errOption)
		}
		o.strategy = s
		return nil
	}
}

// FetchTimeout bounds one descriptor look-up (default DefaultFetchTimeout).
func FetchTimeout(d time.Duration) Option {
	return func(o *options) error { o.fetchTimeout = d; return positive("fetch timeout", d) }
}

// AllowSameSubnet lets relays of one path share an IPv4 /16 or IPv6 /32:
// for loopback test networks only.
func AllowSameSubnet() Option {
	return func(o *options) error { o.allowSameSubnet = true; return nil }
}

// WithWeigher sets the relay weights (default UniformWeigher).
func WithWeigher(w Weigher) Option {
	return func(o *options) error {
		if w == nil {
			return fmt.Errorf("nil weigher: %w", errOption)
		}
		o.weigher = w
		return nil
	}
}

// Guards sets the guard set size (default DefaultGuards) and the number of
// consecutive failures that replace a guard (default
// DefaultMaxGuardFailures).
func Guards(n, maxFailures int) Option {
	return func(o *options) error {
		if n < 1 || maxFailures < 1 {
			return fmt.Errorf("guards %d, failures %d: %w", n, maxFailures, errOption)
		}
		o.guards.n, o.guards.maxFailures = n, maxFailures
		return nil
	}
}

// DownTime sets how long a relay that failed a build is avoided (default
// DefaultDownTime) and how long the relays of a build that failed without
// naming a hop are (default DefaultSuspectTime).
func DownTime(down, suspect time.Duration) Option {
	return func(o *options) error {
		o.downTime, o.suspectTime = down, suspect
		if err := positive("down time", down); err != nil {
			return err
		}
		return positive("suspect time", suspect)
	}
}

// VerifyRelay adds a check of every relay's descriptor, after its
// signature and times are verified: a descriptor f refuses never enters the
// directory, and Recheck (also run after every refresh) drops those it
// refuses later, e.g. when a certificate expires or is revoked. So such a
// relay is never chosen. Default: no check.
func VerifyRelay(f func(*Descriptor) error) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("nil relay check: %w", errOption)
		}
		o.verifyRelay = f
		return nil
	}
}

// Validator adds a record namespace to the DHT: records under
// "/ns/..." are stored, served and chosen among by v (its Validate refuses
// a record, its Select picks the best of several), on this node and, for
// the records it PUTs or GETs, as its peers run the same option. Used for
// the TIS revocation list. Default: only the descriptor namespace.
func Validator(ns string, v record.Validator) Option {
	return func(o *options) error {
		switch {
		case v == nil:
			return fmt.Errorf("nil validator for %q: %w", ns, errOption)
		case ns == "" || ns == Namespace:
			return fmt.Errorf("validator namespace %q: %w", ns, errOption)
		}
		if o.validators == nil {
			o.validators = map[string]record.Validator{}
		}
		o.validators[ns] = v
		return nil
	}
}
