package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// Config is the whole configuration of a pikcio node. The zero value is not
// useful: start from Default.
type Config struct {
	Node   NodeConfig   `toml:"node"`
	Log    LogConfig    `toml:"log"`
	Client ClientConfig `toml:"client"`
	Relay  RelayConfig  `toml:"relay"`
	TIS    TISConfig    `toml:"tis"`
	Trust  TrustConfig  `toml:"trust"`
	// Services are the [[services]] blocks, one per published service, in
	// the file's order (services.go).
	Services []ServiceConfig `toml:"services,omitempty"`
}

// NodeConfig is the [node] section: where the node keeps its state and how
// it joins the libp2p network.
type NodeConfig struct {
	// DataDir holds the node's key and state. "" means
	// $XDG_DATA_HOME/pikcio or ~/.local/share/pikcio. See ResolveDataDir.
	DataDir string `toml:"data_dir"`
	// Listen lists the libp2p listen multiaddrs.
	Listen []string `toml:"listen"`
	// Bootstrap lists peers to join the network through, as multiaddrs
	// ending in /p2p/<peer id>.
	Bootstrap []string `toml:"bootstrap"`
	// Announce lists the multiaddrs the node advertises instead of its
	// listen addresses (a relay behind a port forward, as Tor's ORPort
	// NoListen/NoAdvertise); empty means the listen addresses.
	Announce []string `toml:"announce"`
}

// LogConfig is the [log] section.
type LogConfig struct {
	// Level is one of trace, debug, info, warn, error (logrus.ParseLevel
	// accepts all of them).
	Level string `toml:"level"`
	// Format is text or json.
	Format string `toml:"format"`
}

// ClientConfig is the [client] section: the local proxies and the circuits
// they use.
type ClientConfig struct {
	Enabled bool `toml:"enabled"`
	// SOCKSListen, HTTPListen and StatusListen are host:port; "" disables.
	SOCKSListen  string `toml:"socks_listen"`
	HTTPListen   string `toml:"http_listen"`
	StatusListen string `toml:"status_listen"`
	// ControlListen is where the control API listens: host:port on
	// loopback, or "unix:" and a socket path; "" (the default) disables it.
	ControlListen string `toml:"control_listen"`
	// SOCKSEarlySuccess makes the SOCKS proxy reply success before the
	// exit has connected (optimistic data): a round trip sooner, but a
	// refused connect resets the connection instead of its reply code, and
	// a stream on a dead circuit is not moved to another. Default off.
	SOCKSEarlySuccess bool `toml:"socks_early_success"`
	// Hops is the number of relays in a circuit, 1..8.
	Hops int `toml:"hops"`
	// CircuitDirtiness is how long a circuit takes new streams after its
	// first one.
	CircuitDirtiness Duration `toml:"circuit_dirtiness"`
	// PrebuiltCircuits is how many spare circuits are kept ready, 0..32.
	PrebuiltCircuits int `toml:"prebuilt_circuits"`
	// ConnectTimeout bounds a stream's BEGIN -> CONNECTED.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// BuildTimeout bounds building a whole circuit.
	BuildTimeout Duration `toml:"build_timeout"`
}

// RelayConfig is the [relay] section: whether and how this node relays for
// others.
type RelayConfig struct {
	Enabled bool `toml:"enabled"`
	// Exit makes the relay open connections to destinations.
	Exit bool `toml:"exit"`
	// IPv6Exit says, in an exit's descriptor, that it can reach IPv6
	// destinations (Tor's IPv6Exit): clients pick it for IPv6 literals.
	IPv6Exit bool `toml:"ipv6_exit"`
	// ExitPolicy rules are placed before the default exit policy; syntax
	// is exitnode.ParseRules's.
	ExitPolicy           []string `toml:"exit_policy"`
	MaxCircuitsPerPeer   int      `toml:"max_circuits_per_peer"`
	MaxStreamsPerCircuit int      `toml:"max_streams_per_circuit"`
	HandshakesPerSecond  int      `toml:"handshakes_per_second"`
	// BandwidthRate is in bytes per second relayed; 0 means unlimited.
	BandwidthRate int64 `toml:"bandwidth_rate"`
	// BandwidthBurst is in bytes; 0 means the same as BandwidthRate.
	BandwidthBurst int64 `toml:"bandwidth_burst"`
}

// TISConfig is the [tis] section: the Trusted Identification System the
// node trusts. Enrollment (name, e-mail) is a separate command, `pikcio
// enroll`; none of it is kept here.
type TISConfig struct {
	// RootKey is the pinned TIS root public key (standard base64 of 32
	// bytes, as "pikcio tis init" prints it). "" means no TIS: relays are
	// neither certified nor checked.
	RootKey string `toml:"root_key"`
	// URL is the TIS base URL (or host:port) for enrollment at the first
	// start and for revocation lists, which the node then puts into the
	// DHT. "" means the list only comes from the DHT.
	URL string `toml:"url"`
	// Require, with RootKey set, makes the client choose only relays with a
	// valid node certificate and the relay admit circuits only from
	// enrolled previous hops.
	Require bool `toml:"require"`
	// RevocationRefresh is how often the revocation list is fetched from
	// the TIS and from the DHT.
	RevocationRefresh Duration `toml:"revocation_refresh"`
}

// TrustConfig is the [trust] section: how the node computes the Trust
// Capital Index and uses it to choose relays. It needs [tis].
type TrustConfig struct {
	// Refresh is how often the node crawls the DHT for trust records and
	// recomputes scores (and publishes its own records again).
	Refresh Duration `toml:"refresh"`
	// MinGuardScore and MinExitScore (0..100) exclude relays from the
	// guard and exit positions whose operator's score band (stated by the
	// TIS) tops out below the minimum, and, once the TIS states a band for
	// any relay, relays without a statement. Default trust.DefaultMinScore
	// (1): only unscored relays are excluded, and only where bands exist.
	// 0 admits relays without a statement.
	MinGuardScore int `toml:"min_guard_score"`
	MinExitScore  int `toml:"min_exit_score"`
	// PreferContactGuards makes relays run by the user's contacts far
	// more likely to be chosen as entry guards. Off by default: a guard
	// run by a contact knows the user's address and, by name, who the
	// user is (README, Trust).
	PreferContactGuards bool `toml:"prefer_contact_guards"`
	// Attesters are public keys (base64, like tis.root_key) of attesters
	// whose attestations count besides the TIS's own.
	Attesters []string `toml:"attesters"`
}

// Default returns the default configuration. It is built from the
// defaults of the packages that own each setting (circuit's relay caps
// and hop count, proxy's listen addresses and pool timings, web's status
// address, tis's and trust's refresh intervals); what is written here is
// what only the configuration has. pikcio.example.toml repeats them and
// a test keeps the two equal.
func Default() *Config {
	relay := circuit.DefaultRelayOptions()
	return &Config{
		Node: NodeConfig{
			DataDir:   "",
			Listen:    []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			Bootstrap: []string{},
			Announce:  []string{},
		},
		Log: LogConfig{
			Level:  "info",
			Format: "text",
		},
		Client: ClientConfig{
			Enabled:          true,
			SOCKSListen:      proxy.DefaultSOCKSAddr,
			HTTPListen:       proxy.DefaultHTTPAddr,
			StatusListen:     web.DefaultAddr,
			Hops:             circuit.DefaultHops,
			CircuitDirtiness: Duration(proxy.DefaultDirtiness),
			PrebuiltCircuits: proxy.DefaultPrebuilt,
			ConnectTimeout:   Duration(proxy.DefaultConnectTimeout),
			BuildTimeout:     Duration(proxy.DefaultBuildTimeout),
		},
		Relay: RelayConfig{
			Enabled:              false,
			Exit:                 false,
			IPv6Exit:             false,
			ExitPolicy:           []string{},
			MaxCircuitsPerPeer:   relay.MaxCircuitsPerPeer,
			MaxStreamsPerCircuit: relay.MaxStreamsPerCircuit,
			HandshakesPerSecond:  int(relay.HandshakesPerSecond),
			BandwidthRate:        0,
			BandwidthBurst:       0,
		},
		TIS: TISConfig{
			RootKey:           "",
			URL:               "",
			Require:           true,
			RevocationRefresh: Duration(tis.DefaultRevocationRefresh),
		},
		Trust: TrustConfig{
			Refresh:             Duration(trust.DefaultRefresh),
			MinGuardScore:       trust.DefaultMinScore,
			MinExitScore:        trust.DefaultMinScore,
			PreferContactGuards: false, // opt-in: see README, Trust
			Attesters:           []string{},
		},
	}
}

// Override changes a configuration after the file has been read: the
// command builds one from its flags so that flags win over the file, also
// after a reload. It must be deterministic and must not keep c.
type Override func(c *Config)

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	cloneSlices(reflect.ValueOf(&out).Elem())
	return &out
}

// cloneSlices replaces every slice reachable through struct fields of v
// with a copy, so that the copy shares no memory with the original.
func cloneSlices(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			cloneSlices(f)
		case reflect.Slice:
			if !f.IsNil() {
				cp := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
				reflect.Copy(cp, f)
				f.Set(cp)
			}
		default:
		}
	}
}

// Diff returns the dotted keys whose values differ between prev and next, in
// the order of the Config struct. An empty and a nil list are equal. Diff
// returns keys only, never values, so its result may be logged.
func Diff(prev, next *Config) []string {
	if prev == nil || next == nil {
		if prev == next {
			return nil
		}
		return Keys()
	}
	var changed []string
	a, b := reflect.ValueOf(prev).Elem(), reflect.ValueOf(next).Elem()
	for _, f := range schema().fields {
		x, y := a.FieldByIndex(f.index), b.FieldByIndex(f.index)
		if x.Kind() == reflect.Slice && x.Len() == 0 && y.Len() == 0 {
			continue
		}
		if !reflect.DeepEqual(x.Interface(), y.Interface()) {
			changed = append(changed, f.key)
		}
	}
	return changed
}

// Keys returns every leaf key of the configuration, dotted ("client.hops"),
// in the order of the Config struct.
func Keys() []string {
	fields := schema().fields
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// ResolveDataDir returns the data directory: DataDir, or
// $XDG_DATA_HOME/pikcio, or ~/.local/share/pikcio. It creates the directory
// with mode 0700 if it does not exist.
func (n NodeConfig) ResolveDataDir() (string, error) {
	dir := n.DataDir
	if dir == "" {
		base := os.Getenv("XDG_DATA_HOME")
		// The XDG spec says relative values are invalid and to be ignored.
		if base == "" || !filepath.IsAbs(base) {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("data directory: %w", err)
			}
			base = filepath.Join(home, ".local", "share")
		}
		dir = filepath.Join(base, "pikcio")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data directory %s: %w", dir, err)
	}
	return dir, nil
}

// Duration is a time.Duration written in TOML as a string such as "10m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does ("10m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with time.ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var errDurationSyntax = errors.New(`want a duration such as "30s", "10m" or "1h30m"`)

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, errDurationSyntax)
	}
	return v, nil
}

// field is one leaf of the Config struct.
type field struct {
	key   string // dotted, "client.hops"
	index []int  // for reflect.Value.FieldByIndex
	typ   reflect.Type
	// elems are the keys of an array of tables' blocks ([[services]]),
	// by name; nil for other leaves.
	elems map[string]*field
}

var durationType = reflect.TypeFor[Duration]()

// schemaInfo describes the shape of Config as TOML sees it.
type schemaInfo struct {
	fields []field           // leaves, in struct order
	leaves map[string]*field // dotted key -> leaf
	tables map[string]bool   // dotted key of every section, "" for the root
}

// schema walks the toml tags of Config once. It panics on a field type the
// package does not handle, which the tests catch.
var schema = sync.OnceValue(func() *schemaInfo {
	s := &schemaInfo{leaves: map[string]*field{}, tables: map[string]bool{"": true}}
	s.fields = walkSchema(s.tables)
	for i := range s.fields {
		s.leaves[s.fields[i].key] = &s.fields[i]
	}
	return s
})

func walkSchema(tables map[string]bool) []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				panic(fmt.Sprintf("config: field %s.%s has no toml tag", t.Name(), sf.Name))
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			switch {
			case sf.Type == durationType:
			case sf.Type.Kind() == reflect.Struct:
				tables[key] = true
				walk(sf.Type, key, idx)
				continue
			case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct && prefix == "":
				out = append(out, field{key: key, index: idx, typ: sf.Type, elems: elemFields(sf.Type.Elem())})
				continue
			case sf.Type.Kind() == reflect.String, sf.Type.Kind() == reflect.Bool,
				sf.Type.Kind() == reflect.Int, sf.Type.Kind() == reflect.Int64:
			default:
				panic(fmt.Sprintf("config: field %s of unsupported type %s", key, sf.Type))
			}
			out = append(out, field{key: key, index: idx, typ: sf.Type})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// elemFields are the keys of the blocks of an array of tables, whose
// struct may have string, bool and int fields only.
func elemFields(t reflect.Type) map[string]*field {
	out := make(map[string]*field, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		switch sf.Type.Kind() {
		case reflect.String, reflect.Bool, reflect.Int:
		default:
			panic(fmt.Sprintf("config: block field %s.%s of unsupported type %s", t.Name(), sf.Name, sf.Type))
		}
		if name == "" || name == "-" {
			panic(fmt.Sprintf("config: field %s.%s has no toml tag", t.Name(), sf.Name))
		}
		out[name] = &field{key: name, index: []int{i}, typ: sf.Type}
	}
	return out
}
