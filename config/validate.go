package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/tis"
)

// Validate checks every value of c. It returns nil, one *Error, or several
// joined with errors.Join (see Problems). Errors carry Key but no File or
// Line: Load and Parse fill those in from the file.
func (c *Config) Validate() error {
	return joinErrors(c.validate())
}

var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

func (c *Config) validate() []*Error {
	var v validator
	n := &c.Node
	if n.DataDir != "" && !filepath.IsAbs(n.DataDir) {
		v.add("node.data_dir", 0, nil, "%q: must be an absolute path, or empty for the default", n.DataDir)
	}
	for i, s := range n.Listen {
		m, err := ma.NewMultiaddr(s)
		switch {
		case err != nil:
			v.add("node.listen", i+1, err, "%q: not a multiaddr: %v", s, err)
		case hasP2P(m):
			v.add("node.listen", i+1, nil, "%q: a listen address must not contain /p2p/", s)
		}
	}
	for i, s := range n.Announce {
		m, err := ma.NewMultiaddr(s)
		switch {
		case err != nil:
			v.add("node.announce", i+1, err, "%q: not a multiaddr: %v", s, err)
		case hasP2P(m):
			v.add("node.announce", i+1, nil, "%q: an announced address must not contain /p2p/", s)
		}
	}
	if c.Relay.Enabled && len(n.Listen) == 0 {
		v.add("node.listen", 0, nil, "a relay needs at least one listen address")
	}
	for i, s := range n.Bootstrap {
		info, err := peer.AddrInfoFromString(s)
		switch {
		case err != nil:
			v.add("node.bootstrap", i+1, err, "%q: want a multiaddr ending in /p2p/<peer id>: %v", s, err)
		case len(info.Addrs) == 0:
			v.add("node.bootstrap", i+1, nil, "%q: want a transport address before /p2p/<peer id>", s)
		}
	}

	v.oneOf("log.level", c.Log.Level, logLevels)
	v.oneOf("log.format", c.Log.Format, logFormats)

	cl := &c.Client
	listeners := []struct{ key, addr string }{
		{"client.socks_listen", cl.SOCKSListen},
		{"client.http_listen", cl.HTTPListen},
		{"client.status_listen", cl.StatusListen},
	}
	if cl.ControlListen != "" && !strings.HasPrefix(cl.ControlListen, "unix:") {
		listeners = append(listeners, struct{ key, addr string }{"client.control_listen", cl.ControlListen})
	} else if cl.ControlListen == "unix:" {
		v.add("client.control_listen", 0, nil, "%q: want unix:PATH", cl.ControlListen)
	}
	for i, l := range listeners {
		if l.addr == "" {
			continue
		}
		port, err := checkListen(l.addr)
		if err != nil {
			v.add(l.key, 0, nil, "%q: %v", l.addr, err)
			continue
		}
		for _, prev := range listeners[:i] {
			if port != 0 && prev.addr == l.addr {
				v.add(l.key, 0, nil, "%q: same address as %s", l.addr, prev.key)
			}
		}
	}
	v.between("client.hops", cl.Hops, 1, circuit.MaxHops)
	v.positive("client.circuit_dirtiness", cl.CircuitDirtiness)
	v.between("client.prebuilt_circuits", cl.PrebuiltCircuits, 0, 32)
	v.positive("client.connect_timeout", cl.ConnectTimeout)
	v.positive("client.build_timeout", cl.BuildTimeout)

	r := &c.Relay
	v.exitPolicy("relay.exit_policy", r.ExitPolicy)
	v.atLeast("relay.max_circuits_per_peer", int64(r.MaxCircuitsPerPeer), 1)
	v.atLeast("relay.max_streams_per_circuit", int64(r.MaxStreamsPerCircuit), 1)
	v.atLeast("relay.handshakes_per_second", int64(r.HandshakesPerSecond), 1)
	v.atLeast("relay.bandwidth_rate", r.BandwidthRate, 0)
	v.atLeast("relay.bandwidth_burst", r.BandwidthBurst, 0)

	ts := &c.TIS
	if ts.RootKey != "" {
		if _, err := tis.ParseKey(ts.RootKey); err != nil {
			v.add("tis.root_key", 0, nil, "%q: want the root key printed by \"pikcio tis init\" (base64 of 32 bytes)", ts.RootKey)
		}
	}
	if ts.URL != "" {
		if err := checkTISURL(ts.URL); err != nil {
			v.add("tis.url", 0, nil, "%q: %v", ts.URL, err)
		}
	}
	v.positive("tis.revocation_refresh", ts.RevocationRefresh)

	tr := &c.Trust
	v.positive("trust.refresh", tr.Refresh)
	for _, k := range []struct {
		key string
		val int
	}{{"trust.min_guard_score", tr.MinGuardScore}, {"trust.min_exit_score", tr.MinExitScore}} {
		if k.val < 0 || k.val > 100 {
			v.add(k.key, 0, nil, "%d: want 0..100", k.val)
		}
	}
	for i, a := range tr.Attesters {
		if _, err := tis.ParseKey(a); err != nil {
			v.add("trust.attesters", i+1, nil, "%q: want a public key (base64 of 32 bytes)", a)
		}
	}
	v.services(c)
	return v.errs
}

// validator collects problems.
type validator struct{ errs []*Error }

func (v *validator) add(key string, elem int, cause error, format string, args ...any) {
	v.errs = append(v.errs, &Error{
		Key:  key,
		Err:  &problem{kind: ErrValue, msg: fmt.Sprintf(format, args...), cause: cause},
		elem: elem,
	})
}

// exitPolicy reports every bad rule, each at its element.
func (v *validator) exitPolicy(key string, rules []string) {
	for base := 0; base < len(rules); {
		_, err := exitnode.ParseRules(rules[base:])
		if err == nil {
			return
		}
		var re *exitnode.RuleError
		if !errors.As(err, &re) || re.N < 1 || base+re.N > len(rules) {
			v.add(key, 0, err, "%v", err)
			return
		}
		n := base + re.N
		cause := &exitnode.RuleError{N: n, Rule: re.Rule, Err: re.Err}
		v.add(key, n, cause, "rule %d %q: %v", n, re.Rule, re.Err)
		base = n
	}
}

func (v *validator) between(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(key, 0, nil, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) atLeast(key string, n, lo int64) {
	if n < lo {
		v.add(key, 0, nil, "must be at least %d, got %d", lo, n)
	}
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, 0, nil, "must be more than 0, got %s", d)
	}
}

func (v *validator) oneOf(key, s string, allowed []string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.add(key, 0, nil, "%q: must be one of %s", s, strings.Join(allowed, ", "))
}

// checkListen checks a "host:port" listen address, host an IP literal or
// localhost (no name lookups when starting), and returns its port.
func checkListen(s string) (uint16, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return 0, errors.New("want host:port such as 127.0.0.1:1080")
	}
	if host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return 0, errors.New("host must be an IP address or localhost")
		}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, errors.New("port must be a number from 0 to 65535")
	}
	return uint16(port), nil
}

// checkTISURL accepts an http(s) URL with a host, or a bare host:port.
func checkTISURL(s string) error {
	if !strings.Contains(s, "://") {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return errors.New("want an http:// or https:// URL, or host:port")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL, or host:port")
	}
	// Enrollment sends a name and an e-mail: in clear only to this machine.
	if h := u.Hostname(); u.Scheme == "http" && h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return errors.New("http:// only to a loopback address (127.0.0.1, ::1, localhost): use https://")
		}
	}
	return nil
}

func hasP2P(m ma.Multiaddr) bool {
	_, err := m.ValueForProtocol(ma.P_P2P)
	return err == nil
}
