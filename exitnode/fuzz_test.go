package exitnode

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pikcio/pikcio/internal/endreason"
)

// checkRule fails unless r holds the invariants ParseRule promises.
func checkRule(t *testing.T, r Rule) {
	t.Helper()
	if r.PortLo == 0 || r.PortLo > r.PortHi {
		t.Fatalf("bad ports in %+v", r)
	}
	if r.Any {
		if r.Prefix != (netip.Prefix{}) {
			t.Fatalf("wildcard with a prefix: %+v", r)
		}
		return
	}
	p := r.Prefix
	if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		t.Fatalf("bad prefix in %+v", r)
	}
}

func FuzzParseRule(f *testing.F) {
	for _, tc := range validRules {
		f.Add(tc.in)
	}
	for _, tc := range invalidRules {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || r != (Rule{}) {
				t.Fatalf("ParseRule(%q) = %+v, %#v", s, r, err)
			}
			return
		}
		checkRule(t, r)
		text := r.String()
		back, err := ParseRule(text)
		if err != nil || back != r {
			t.Fatalf("ParseRule(%q) = %+v; its String %q parses to %+v, %v", s, r, text, back, err)
		}
		if back.String() != text {
			t.Fatalf("String is not stable: %q then %q", text, back.String())
		}
	})
}

func FuzzSplitRules(f *testing.F) {
	f.Add("accept 127.0.0.1:*, reject *:25")
	f.Add("accept *:80\n accept *:443,reject *:*")
	f.Add(" , ,\n")
	for _, tc := range validRules {
		f.Add(tc.in + "," + tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts := SplitRules(s)
		for _, p := range parts {
			if p == "" || p != strings.TrimSpace(p) || strings.ContainsAny(p, ",\n") {
				t.Fatalf("SplitRules(%q) gave %q", s, p)
			}
		}
		rules, err := ParseRules(parts)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || re.N < 1 || re.N > len(parts) || re.Rule != parts[re.N-1] {
				t.Fatalf("ParseRules error %#v does not name a rule of %q", err, parts)
			}
			return
		}
		p := NewPolicy(rules, nil)
		// The operator's rules stay, in order, and the default ends it.
		all, i := p.Rules(), 0
		for _, r := range all {
			if i < len(rules) && r == rules[i] {
				i++
			}
		}
		if i != len(rules) || all[len(all)-1] != (Rule{Accept: true, Any: true, PortLo: 1, PortHi: 65535}) {
			t.Fatalf("policy of %q lost or reordered rules:\n%s", s, p)
		}
		back, err := ParseRules(SplitRules(p.String()))
		if err != nil || !slices.Equal(back, p.Rules()) {
			t.Fatalf("policy of %q does not round-trip through String: %v", s, err)
		}
	})
}

// FuzzPolicy checks Allows against AcceptsPort: a public address that is
// allowed on a port means the policy accepts the port, and the witness
// AcceptsPort relies on is allowed.
func FuzzPolicy(f *testing.F) {
	f.Add("accept *:80, accept *:443, reject *:*", []byte{8, 8, 8, 8}, uint16(80))
	f.Add("reject *4:*, accept *:80, reject *:*", []byte{0x20, 1, 0x48, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(80))
	f.Add("accept 127.0.0.1:*", []byte{127, 0, 0, 1}, uint16(22))
	f.Add("reject 0.0.0.0/1:*, reject 128.0.0.0/2:*, reject *6:*", []byte{193, 0, 0, 1}, uint16(443))
	f.Add("", []byte{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1}, uint16(80))
	f.Add("", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}, uint16(80))
	f.Fuzz(func(t *testing.T, rules string, addrBytes []byte, port uint16) {
		parsed, err := ParseRules(SplitRules(rules))
		if err != nil {
			return
		}
		var addr netip.Addr
		switch len(addrBytes) {
		case 4:
			addr = netip.AddrFrom4([4]byte(addrBytes))
		case 16:
			addr = netip.AddrFrom16([16]byte(addrBytes))
		default:
			return
		}
		p := NewPolicy(parsed, []netip.Addr{netip.MustParseAddr("198.51.100.7")})
		allowed := p.Allows(addr, port)
		if allowed != p.Allows(addr.Unmap(), port) {
			t.Fatalf("%s and its unmapped form are judged differently", addr)
		}
		if allowed {
			u := addr.Unmap()
			for _, r := range privateRanges {
				if r.Contains(u) && !slices.ContainsFunc(parsed, func(o Rule) bool { return o.Accept && o.matches(u, port) }) {
					t.Fatalf("%s:%d allowed in default-rejected %s by no operator rule", addr, port, r)
				}
			}
			if u == netip.MustParseAddr("198.51.100.7") {
				t.Fatalf("own address allowed on %d", port)
			}
		}
		if allowed && isPublic(addr.Unmap()) && !p.AcceptsPort(port) {
			t.Fatalf("%s:%d is allowed but AcceptsPort(%d) is false", addr, port, port)
		}
		if w, ok := p.publicWitness(port); ok && (!p.Allows(w, port) || !isPublic(w)) {
			t.Fatalf("witness %s for port %d is not an allowed public address", w, port)
		}
	})
}

// FuzzDialExitHost feeds DialExit hosts as they arrive in BEGIN messages,
// with a resolver that answers a mix of allowed and rejected addresses and a
// dialer that records instead of connecting: only allowed addresses may be
// dialed, and a failure is always a classified *DialError.
func FuzzDialExitHost(f *testing.F) {
	for _, h := range []string{"localhost", "www.example.com", "127.0.0.1", "::ffff:127.0.0.1", "[::1]", "8.8.8.8",
		"[2001:4860::1]", "fe80::1%eth0", "", "a b", "[127.0.0.1]", "64:ff9b::7f00:1", "2002:a00:1::1"} {
		f.Add(h, uint16(443))
	}
	policy := mustPolicy(f, "accept 127.0.0.2:*")
	resolver := answer("::ffff:127.0.0.1", "10.0.0.1", "127.0.0.2", "8.8.8.8", "fe80::1", "2001:4860::1")
	f.Fuzz(func(t *testing.T, host string, port uint16) {
		var mu sync.Mutex
		var dialed []string
		e := New(Options{Policy: policy, Resolver: resolver, Dialer: dialerFunc(func(_ context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, address)
			mu.Unlock()
			return nil, errors.New("not dialing in a fuzz test")
		})})
		conn, err := e.DialExit(context.Background(), host, port)
		if conn != nil || err == nil {
			t.Fatal("DialExit succeeded through a failing dialer")
		}
		var de *DialError
		if !errors.As(err, &de) || !errors.Is(err, de.Reason.Err()) || endreason.ReasonOf(err) != de.Reason {
			t.Fatalf("err %#v is not a classified DialError", err)
		}
		for _, a := range dialed {
			ap, err := netip.ParseAddrPort(a)
			if err != nil || ap.Port() != port || !policy.Allows(ap.Addr(), port) || ap.Addr().Is4In6() {
				t.Fatalf("host %q: dialed %s, which the policy does not allow", host, a)
			}
		}
	})
}
