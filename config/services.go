package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/pikcio/pikcio/service"
)

// ServiceConfig is one [[services]] block: a Matryoshka service the
// node publishes (package service). The first block is the service the
// node tells its contacts of in the invite exchange.
//
//	[[services]]
//	name = "blog"              # reached as blog.pikcio on this node
//	target = "127.0.0.1:8080"  # where its streams go
//	contacts_only = false      # true: only contacts can read its descriptor
//	allow_lan = false          # true: target may be another machine
//
// A running node applies a change at once: a new block starts a service,
// a removed one stops it (its intro circuits close and its descriptor is
// no longer published, so it expires), a new target applies to new
// streams and a change of contacts_only republishes.
type ServiceConfig struct {
	// Name is a lower-case DNS label (service.CheckName); it also names
	// the service's key file, so the address stays across restarts.
	Name string `toml:"name"`
	// Target is host:port, host an IP literal or "localhost".
	Target string `toml:"target"`
	// ContactsOnly lets only the node's contacts read the descriptor.
	ContactsOnly bool `toml:"contacts_only"`
	// AllowLAN lets Target be other than a loopback address. Off by
	// default: anyone who knows the address could otherwise use the
	// service as a way into the local network.
	AllowLAN bool `toml:"allow_lan"`
}

// ServicesKey is the key of the [[services]] blocks.
const ServicesKey = "services"

// Runtime is the service's configuration as package service runs it.
func (s ServiceConfig) Runtime() service.Config {
	return service.Config{Name: s.Name, Target: s.Target, ContactsOnly: s.ContactsOnly}
}

// RuntimeServices are c's [[services]] as package service runs them.
func (c *Config) RuntimeServices() []service.Config {
	out := make([]service.Config, 0, len(c.Services))
	for _, s := range c.Services {
		out = append(out, s.Runtime())
	}
	return out
}

// ErrTargetNotLoopback: a service target on another machine without
// allow_lan.
var ErrTargetNotLoopback = errors.New("not a loopback address (set allow_lan = true, or --allow-lan, to publish a service of another machine)")

// CheckTarget checks a service's target: host:port with a port of 1 to
// 65535 and host an IP literal or "localhost" (no name lookups), a
// loopback one unless allowLAN.
func CheckTarget(target string, allowLAN bool) error {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return errors.New("want host:port such as 127.0.0.1:8080")
	}
	if p, err := strconv.ParseUint(portStr, 10, 16); err != nil || p == 0 {
		return errors.New("port must be a number from 1 to 65535")
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return errors.New("host must be an IP address or localhost")
	case !ip.Unmap().IsLoopback() && !allowLAN:
		return ErrTargetNotLoopback
	case ip.IsUnspecified() || ip.IsMulticast():
		return errors.New("host must be the address of one machine")
	}
	return nil
}

// services reports each bad block at its line.
func (v *validator) services(c *Config) {
	seen := map[string]int{}
	for i, s := range c.Services {
		n := i + 1
		if err := service.CheckName(s.Name); err != nil {
			v.add(ServicesKey+".name", n, err, "%v", err)
		} else if prev, dup := seen[s.Name]; dup {
			v.add(ServicesKey+".name", n, nil, "%q: already the name of service %d", s.Name, prev)
		}
		seen[s.Name] = n
		if err := CheckTarget(s.Target, s.AllowLAN); err != nil {
			v.add(ServicesKey+".target", n, err, "service %q: %q: %v", s.Name, s.Target, err)
		}
	}
	if len(c.Services) > 0 && !c.Client.Enabled {
		v.add(ServicesKey, 1, nil, "services are published by the client: set client.enabled = true")
	}
}

// AppendService returns data, a configuration file, with a [[services]]
// block for s added at its end; everything else stays as written. It
// fails if data does not parse or already has a service of that name.
func AppendService(name string, data []byte, s ServiceConfig) ([]byte, error) {
	cfg, idx, err := parseIndexed(name, data)
	if err != nil {
		return nil, err
	}
	if k := idx.byKey[ServicesKey]; k != nil && k.kind == unstable.Array {
		return nil, &Error{File: name, Line: k.line, Key: ServicesKey, Err: &problem{kind: ErrValue, msg: "an empty list: delete it to add [[services]] blocks"}}
	}
	for _, o := range cfg.Services {
		if o.Name == s.Name {
			return nil, fmt.Errorf("%s: service %q: %w", name, s.Name, ErrServiceExists)
		}
	}
	var b bytes.Buffer
	b.Write(data)
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		b.WriteByte('\n')
	}
	if len(data) > 0 {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "[[%s]]\nname = %s\ntarget = %s\n", ServicesKey, strconv.Quote(s.Name), strconv.Quote(s.Target))
	if s.ContactsOnly {
		b.WriteString("contacts_only = true\n")
	}
	if s.AllowLAN {
		b.WriteString("allow_lan = true\n")
	}
	out := b.Bytes()
	if _, err := Parse(name, out, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// Errors of AppendService and RemoveService.
var (
	ErrServiceExists  = errors.New("already in the configuration")
	ErrServiceMissing = errors.New("not in the configuration")
)

// RemoveService returns data without the [[services]] block of service
// svc: from its header to the next table's header, less the comments and
// blank lines right above that header, which belong to it. Everything
// else stays as written.
func RemoveService(name string, data []byte, svc string) ([]byte, error) {
	cfg, idx, err := parseIndexed(name, data)
	if err != nil {
		return nil, err
	}
	blocks := idx.blocks[ServicesKey]
	at := -1
	for i, s := range cfg.Services {
		if s.Name == svc && i < len(blocks) {
			at = i
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%s: service %q: %w", name, svc, ErrServiceMissing)
	}
	lines := strings.SplitAfter(string(data), "\n")
	first := blocks[at].line - 1 // 0-based
	end := len(lines)            // one past the block's last line
	for _, k := range idx.keys {
		if (k.kind == unstable.Table || k.kind == unstable.ArrayTable) && k.line-1 > first {
			end = min(end, k.line-1)
		}
	}
	for end > first+1 && isCommentOrBlank(lines[end-1]) && end < len(lines) {
		end--
	}
	if first > 0 && strings.TrimSpace(lines[first-1]) == "" {
		first-- // the blank line AppendService put before it
	}
	out := strings.Join(lines[:first], "") + strings.Join(lines[end:], "")
	if _, err := Parse(name, []byte(out), nil); err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// parseIndexed parses a file to edit and indexes its keys.
func parseIndexed(name string, data []byte) (*Config, *docIndex, error) {
	cfg, err := Parse(name, data, nil)
	if err != nil {
		return nil, nil, err
	}
	idx, perr := indexDocument(bytes.TrimPrefix(data, []byte("\ufeff")))
	if perr != nil {
		return nil, nil, perr
	}
	return cfg, idx, nil
}

func isCommentOrBlank(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "#")
}
