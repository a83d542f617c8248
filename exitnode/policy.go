package exitnode

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Rule is one `accept|reject ADDR[/BITS]:PORT[-PORT]` rule of an exit policy.
//
// A rule with Any set matches every address and has a zero Prefix. Otherwise
// Prefix is a masked IPv4 or IPv6 prefix (never IPv4-mapped, never zoned).
// PortLo..PortHi is an inclusive range within 1..65535; `*` is 1-65535.
type Rule struct {
	Accept         bool
	Prefix         netip.Prefix
	Any            bool // ADDR is *
	PortLo, PortHi uint16
}

// RuleError reports a malformed exit policy rule.
type RuleError struct {
	N    int    // 1-based position in the list given to ParseRules; 0 from ParseRule
	Rule string // the rule's text
	Err  error  // what is wrong with it
}

func (e *RuleError) Error() string {
	if e.N > 0 {
		return fmt.Sprintf("exit policy rule %d %q: %v", e.N, e.Rule, e.Err)
	}
	return fmt.Sprintf("exit policy rule %q: %v", e.Rule, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// ParseRule parses one rule: a keyword, `accept` or `reject` in any case,
// then white space, then ADDR:PORT with no space inside.
//
// ADDR is `*` (any address), `*4` (any IPv4 address), `*6` (any IPv6
// address), an IPv4 address with an optional /BITS, or an IPv6 address in
// brackets with an optional /BITS after the closing bracket. A prefix must
// have no bits set beyond its length (`10.0.0.1/8` is an error, not silently
// widened), IPv6 zones are refused, and IPv4-mapped IPv6 addresses must be
// written as IPv4 (destinations are unmapped before matching).
//
// PORT is `*`, `N` or `N-M` with 1 <= N <= M <= 65535, in decimal without
// leading zeros.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(s)
	if err != nil {
		return Rule{}, &RuleError{Rule: s, Err: err}
	}
	return r, nil
}

// ParseRules parses each rule with ParseRule. The error names the first bad
// rule's 1-based position and text.
func ParseRules(rules []string) ([]Rule, error) {
	out := make([]Rule, 0, len(rules))
	for i, s := range rules {
		r, err := parseRule(s)
		if err != nil {
			return nil, &RuleError{N: i + 1, Rule: s, Err: err}
		}
		out = append(out, r)
	}
	return out, nil
}

// SplitRules splits a policy written on one line, or on several, into rules:
// commas and newlines separate rules, each rule is trimmed of surrounding
// white space, and empty ones are dropped.
func SplitRules(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

var (
	any4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	any6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

func parseRule(s string) (Rule, error) {
	fields := strings.Fields(s)
	switch {
	case len(fields) == 0:
		return Rule{}, errors.New("empty rule")
	case len(fields) == 1:
		return Rule{}, errors.New("want accept|reject ADDR:PORT")
	case len(fields) > 2:
		return Rule{}, fmt.Errorf("unexpected %q after ADDR:PORT", fields[2])
	}
	var r Rule
	switch {
	case strings.EqualFold(fields[0], "accept"):
		r.Accept = true
	case strings.EqualFold(fields[0], "reject"):
	default:
		return Rule{}, fmt.Errorf("unknown keyword %q (want accept or reject)", fields[0])
	}
	addr, port, err := splitTarget(fields[1])
	if err != nil {
		return Rule{}, err
	}
	if r.Prefix, r.Any, err = parseAddrPattern(addr); err != nil {
		return Rule{}, err
	}
	if r.PortLo, r.PortHi, err = parsePorts(port); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// splitTarget splits ADDR[/BITS]:PORT at the colon that ends the address.
func splitTarget(t string) (addr, port string, err error) {
	if strings.HasPrefix(t, "[") {
		end := strings.IndexByte(t, ']')
		if end < 0 {
			return "", "", errors.New("missing ] after IPv6 address")
		}
		rest := t[end+1:]
		colon := strings.IndexByte(rest, ':')
		if colon < 0 {
			return "", "", errors.New("missing :PORT")
		}
		return t[:end+1+colon], rest[colon+1:], nil
	}
	colon := strings.LastIndexByte(t, ':')
	if colon < 0 {
		return "", "", errors.New("missing :PORT")
	}
	addr = t[:colon]
	if strings.Contains(addr, ":") {
		return "", "", errors.New("too many colons (an IPv6 address must be in brackets, as in [2001:db8::]/32:443)")
	}
	return addr, t[colon+1:], nil
}

// parseAddrPattern parses ADDR[/BITS] as split off by splitTarget.
func parseAddrPattern(s string) (netip.Prefix, bool, error) {
	switch s {
	case "*":
		return netip.Prefix{}, true, nil
	case "*4":
		return any4, false, nil
	case "*6":
		return any6, false, nil
	case "":
		return netip.Prefix{}, false, errors.New("missing address")
	}
	if strings.HasPrefix(s, "*") {
		return netip.Prefix{}, false, fmt.Errorf("bad address %q (wildcards are *, *4 and *6, without /BITS)", s)
	}
	addrText, bitsText, hasBits := strings.Cut(s, "/")
	bracketed := strings.HasPrefix(addrText, "[")
	if bracketed {
		if !strings.HasSuffix(addrText, "]") {
			return netip.Prefix{}, false, fmt.Errorf("bad address %q (junk after ])", s)
		}
		addrText = addrText[1 : len(addrText)-1]
	}
	addr, err := netip.ParseAddr(addrText)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("bad address %q", addrText)
	}
	switch {
	case addr.Zone() != "":
		return netip.Prefix{}, false, fmt.Errorf("address %s has a zone", addr)
	case addr.Is4() && bracketed:
		return netip.Prefix{}, false, fmt.Errorf("IPv4 address %s in brackets", addr)
	case addr.Is4In6():
		return netip.Prefix{}, false, fmt.Errorf("IPv4-mapped address %s: write it as IPv4 (%s)", addr, addr.Unmap())
	case addr.Is6() && !bracketed:
		// Unreachable through splitTarget, kept for safety.
		return netip.Prefix{}, false, errors.New("IPv6 address must be in brackets")
	}
	bits := addr.BitLen()
	if hasBits {
		n, err := parseDecimal(bitsText, 999)
		if err != nil {
			return netip.Prefix{}, false, fmt.Errorf("bad prefix length %q", bitsText)
		}
		if n > addr.BitLen() {
			return netip.Prefix{}, false, fmt.Errorf("prefix length %d out of range", n)
		}
		bits = n
	}
	p := netip.PrefixFrom(addr, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, false, fmt.Errorf("prefix %s has bits set beyond /%d (did you mean %s?)", p, bits, m)
	}
	return p, false, nil
}

func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 1, 65535, nil
	}
	loText, hiText, isRange := strings.Cut(s, "-")
	l, err := parsePort(loText)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return l, l, nil
	}
	h, err := parsePort(hiText)
	if err != nil {
		return 0, 0, err
	}
	if l > h {
		return 0, 0, fmt.Errorf("port range %d-%d is reversed", l, h)
	}
	return l, h, nil
}

func parsePort(s string) (uint16, error) {
	n, err := parseDecimal(s, 65535)
	switch {
	case s == "":
		return 0, errors.New("missing port")
	case err != nil:
		return 0, fmt.Errorf("bad port %q", s)
	case n == 0:
		return 0, errors.New("port 0 out of range")
	}
	return uint16(n), nil
}

// parseDecimal parses a canonical decimal number (digits only, no sign, no
// leading zeros) no greater than max.
func parseDecimal(s string, max int) (int, error) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int(c-'0')
	}
	if n > max {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// String returns the rule in canonical form: lower-case keyword, `*`, `*4`
// or `*6` for the wildcards, no /BITS for a single address, IPv6 in
// brackets, `*` for all ports. ParseRule(r.String()) == r for every rule
// ParseRule returns.
func (r Rule) String() string {
	var b strings.Builder
	if r.Accept {
		b.WriteString("accept ")
	} else {
		b.WriteString("reject ")
	}
	switch {
	case r.Any:
		b.WriteString("*")
	case r.Prefix == any4:
		b.WriteString("*4")
	case r.Prefix == any6:
		b.WriteString("*6")
	case r.Prefix.Addr().Is4():
		b.WriteString(r.Prefix.Addr().String())
		if r.Prefix.Bits() != 32 {
			b.WriteString("/" + strconv.Itoa(r.Prefix.Bits()))
		}
	case r.Prefix.Addr().Is6():
		b.WriteString("[" + r.Prefix.Addr().String() + "]")
		if r.Prefix.Bits() != 128 {
			b.WriteString("/" + strconv.Itoa(r.Prefix.Bits()))
		}
	default:
		b.WriteString(r.Prefix.String())
	}
	b.WriteByte(':')
	switch {
	case r.PortLo == 1 && r.PortHi == 65535:
		b.WriteString("*")
	case r.PortLo == r.PortHi:
		b.WriteString(strconv.Itoa(int(r.PortLo)))
	default:
		b.WriteString(strconv.Itoa(int(r.PortLo)) + "-" + strconv.Itoa(int(r.PortHi)))
	}
	return b.String()
}

func (r Rule) matchesPort(port uint16) bool { return r.PortLo <= port && port <= r.PortHi }

// matches reports whether r matches an unmapped, unzoned address and port.
func (r Rule) matches(addr netip.Addr, port uint16) bool {
	return r.matchesPort(port) && (r.Any || r.Prefix.Contains(addr))
}

// overlaps reports whether r's address set meets p.
func (r Rule) overlaps(p netip.Prefix) bool { return r.Any || r.Prefix.Overlaps(p) }

// within reports whether r's address set lies inside p.
func (r Rule) within(p netip.Prefix) bool {
	return !r.Any && p.Bits() <= r.Prefix.Bits() && p.Contains(r.Prefix.Addr())
}

// privateRanges are the ranges the default policy rejects, in order, with the
// reason each is there (also in doc.go).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; 0.0.0.0 reaches the exit's own services
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback: the exit's own services
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918 private
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918 private
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918 private
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata services (169.254.169.254)
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT shared space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (DS-Lite, NAT64 discovery)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking, used inside labs and some LANs
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved and the limited broadcast 255.255.255.255
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::1/128"),         // loopback
	netip.MustParsePrefix("::/96"),           // deprecated IPv4-compatible addresses
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("fc00::/7"),        // unique local (the IPv6 private ranges)
	netip.MustParsePrefix("ff00::/8"),        // multicast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64: translates to anything, private included
	netip.MustParsePrefix("::ffff:0:0:0/96"), // SIIT IPv4-translated addresses
}

// Policy is an exit policy: an ordered list of rules where the first rule
// that matches a destination decides. A Policy is immutable once built and
// safe for concurrent use.
type Policy struct {
	rules []Rule
	// public holds the rules that meet publicSpace, the only ones that
	// matter to AcceptsPort.
	public []Rule

	// ports caches AcceptsPort: the set of rules that match a port only
	// changes at the rules' range ends, so the answer is worked out once
	// per span between those ends.
	portsOnce sync.Once
	ports     []portSpan
}

// portSpan is a range of ports with one AcceptsPort answer.
type portSpan struct {
	lo, hi uint16
	ok     bool
}

// NewPolicy builds the policy of an exit: the operator's rules first, then
// the default policy, which rejects the private and special-purpose ranges
// (see the package documentation) and the relay's own addresses, then
// accepts everything else.
//
// An operator's accept rule opens a default-rejected range only when the
// rule's addresses lie entirely inside that range: `accept 127.0.0.1:*` makes
// 127.0.0.1 reachable, but `accept *:80` does not open port 80 of 127.0.0.0/8,
// the private networks or the relay's own addresses. NewPolicy makes this
// explicit by putting `reject RANGE:PORTS` before each such broad accept
// rule, so Rules and String show the policy that is enforced.
func NewPolicy(operator []Rule, own []netip.Addr) *Policy {
	private := make([]netip.Prefix, 0, len(privateRanges)+len(own))
	private = append(private, privateRanges...)
	for _, a := range own {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap().WithZone("")
		private = append(private, netip.PrefixFrom(a, a.BitLen()))
	}

	var rules []Rule
	seen := make(map[Rule]bool)
	add := func(r Rule) {
		// An identical earlier rule already decided whatever r would match.
		if !seen[r] {
			seen[r] = true
			rules = append(rules, r)
		}
	}
	for _, r := range operator {
		if r.Accept {
			for _, p := range private {
				if r.overlaps(p) && !r.within(p) {
					add(Rule{Prefix: p, PortLo: r.PortLo, PortHi: r.PortHi})
				}
			}
		}
		rules = append(rules, r)
		seen[r] = true
	}
	for _, p := range private {
		add(Rule{Prefix: p, PortLo: 1, PortHi: 65535})
	}
	add(Rule{Accept: true, Any: true, PortLo: 1, PortHi: 65535})

	p := &Policy{rules: rules}
	for _, r := range rules {
		if slices.ContainsFunc(publicSpace, r.overlaps) {
			p.public = append(p.public, r)
		}
	}
	return p
}

// DefaultPolicy is NewPolicy(nil, own): every public destination is allowed.
func DefaultPolicy(own []netip.Addr) *Policy { return NewPolicy(nil, own) }

// Rules returns a copy of the policy's rules, in order.
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// String returns the rules, one per line.
func (p *Policy) String() string {
	var b strings.Builder
	for i, r := range p.rules {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// Allows reports whether the policy lets the exit connect to addr:port.
//
// IPv4-mapped IPv6 addresses are matched as the IPv4 address they carry.
// An address with a zone and port 0 are never allowed. An IPv6 address that
// embeds an IPv4 address (NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo
// 2001::/32) is allowed only if the embedded IPv4 addresses are allowed on
// the same port too, so that translation cannot reach a rejected network.
func (p *Policy) Allows(addr netip.Addr, port uint16) bool {
	if p == nil || !addr.IsValid() || addr.Zone() != "" || port == 0 {
		return false
	}
	addr = addr.Unmap()
	if !p.decide(addr, port) {
		return false
	}
	embedded, n := embeddedIPv4(addr)
	for _, v4 := range embedded[:n] {
		if !p.decide(v4, port) {
			return false
		}
	}
	return true
}

// decide applies the first matching rule. No match means reject, which
// cannot happen in a policy built by NewPolicy.
func (p *Policy) decide(addr netip.Addr, port uint16) bool {
	for _, r := range p.rules {
		if r.matches(addr, port) {
			return r.Accept
		}
	}
	return false
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	teredoPrefix = netip.MustParsePrefix("2001::/32")
	mappedPrefix = netip.MustParsePrefix("::ffff:0:0/96")
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address of a transition
// range carries: the translated address for NAT64 (RFC 6052), the router
// for 6to4 (RFC 3056), the server and the client for Teredo (RFC 4380).
func embeddedIPv4(a netip.Addr) (out [2]netip.Addr, n int) {
	if !a.Is6() {
		return out, 0
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		out[0] = netip.AddrFrom4([4]byte(b[12:16]))
		return out, 1
	case sixToFour.Contains(a):
		out[0] = netip.AddrFrom4([4]byte(b[2:6]))
		return out, 1
	case teredoPrefix.Contains(a):
		out[0] = netip.AddrFrom4([4]byte(b[4:8]))
		out[1] = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return out, 2
	}
	return out, 0
}

// AcceptsPort reports whether the policy allows some public address on port:
// an address outside the default-rejected ranges and the IPv6 transition
// ranges. A client uses it to choose an exit for a destination port before
// the name is resolved.
func (p *Policy) AcceptsPort(port uint16) bool {
	if p == nil || port == 0 {
		return false
	}
	p.portsOnce.Do(p.buildPorts)
	i := sort.Search(len(p.ports), func(i int) bool { return p.ports[i].hi >= port })
	return i < len(p.ports) && p.ports[i].ok
}

// buildPorts splits 1..65535 at every rule's range ends and answers each
// span from its first port.
func (p *Policy) buildPorts() {
	cuts := []int{1, 65536}
	for _, r := range p.public {
		cuts = append(cuts, int(r.PortLo), int(r.PortHi)+1)
	}
	sort.Ints(cuts)
	cuts = slices.Compact(cuts)
	for i := 0; i+1 < len(cuts); i++ {
		lo, hi := cuts[i], cuts[i+1]-1
		if lo < 1 || lo > 65535 {
			continue
		}
		_, ok := p.publicWitness(uint16(lo))
		p.ports = append(p.ports, portSpan{lo: uint16(lo), hi: uint16(hi), ok: ok})
	}
}

// publicSpace is the address space AcceptsPort looks for an accepted address
// in: everything but the private, transition and IPv4-mapped ranges.
var publicSpace = func() []netip.Prefix {
	space := []netip.Prefix{any4, any6}
	for _, p := range privateRanges {
		space = subtractPrefix(space, p)
	}
	for _, p := range []netip.Prefix{nat64Prefix, sixToFour, teredoPrefix, mappedPrefix} {
		space = subtractPrefix(space, p)
	}
	return space
}()

// publicWitness returns a public address the policy allows on port, if any.
// It walks the rules that match port, removing what each reject rule covers
// from the still undecided public space, until an accept rule meets it.
func (p *Policy) publicWitness(port uint16) (netip.Addr, bool) {
	if p == nil || port == 0 {
		return netip.Addr{}, false
	}
	open := publicSpace
	for _, r := range p.public {
		if !r.matchesPort(port) {
			continue
		}
		sets := []netip.Prefix{r.Prefix}
		if r.Any {
			sets = []netip.Prefix{any4, any6}
		}
		for _, s := range sets {
			if r.Accept {
				for _, q := range open {
					if q.Overlaps(s) {
						// Overlapping prefixes nest: the longer one is inside.
						if q.Bits() >= s.Bits() {
							return q.Addr(), true
						}
						return s.Addr(), true
					}
				}
			} else {
				open = subtractPrefix(open, s)
			}
		}
	}
	return netip.Addr{}, false
}

// subtractPrefix returns set without the addresses in p. set is not
// modified; it is returned as is if p misses it.
func subtractPrefix(set []netip.Prefix, p netip.Prefix) []netip.Prefix {
	first := slices.IndexFunc(set, p.Overlaps)
	if first < 0 {
		return set
	}
	out := make([]netip.Prefix, first, len(set)+p.Bits())
	copy(out, set[:first])
	for _, q := range set[first:] {
		switch {
		case !q.Overlaps(p):
			out = append(out, q)
		case p.Bits() <= q.Bits():
			// q lies inside p: drop it.
		default:
			// p lies strictly inside q: keep the halves of q that miss p,
			// down to p's length.
			for q.Bits() < p.Bits() {
				lo := netip.PrefixFrom(q.Addr(), q.Bits()+1)
				hi := netip.PrefixFrom(setBit(q.Addr(), q.Bits()), q.Bits()+1)
				if lo.Contains(p.Addr()) {
					out = append(out, hi)
					q = lo
				} else {
					out = append(out, lo)
					q = hi
				}
			}
		}
	}
	return out
}

// setBit returns a with bit i (0 is the most significant) set.
func setBit(a netip.Addr, i int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[i/8] |= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[i/8] |= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}
