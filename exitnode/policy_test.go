package exitnode

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var validRules = []struct {
	in        string
	want      Rule
	canonical string
}{
	{"accept *:*", Rule{Accept: true, Any: true, PortLo: 1, PortHi: 65535}, "accept *:*"},
	{"REJECT *:25", Rule{Any: true, PortLo: 25, PortHi: 25}, "reject *:25"},
	{"  Accept   127.0.0.1:*  ", Rule{Accept: true, Prefix: pfx("127.0.0.1/32"), PortLo: 1, PortHi: 65535}, "accept 127.0.0.1:*"},
	{"accept\t1.2.3.4:65535", Rule{Accept: true, Prefix: pfx("1.2.3.4/32"), PortLo: 65535, PortHi: 65535}, "accept 1.2.3.4:65535"},
	{"reject 10.0.0.0/8:*", Rule{Prefix: pfx("10.0.0.0/8"), PortLo: 1, PortHi: 65535}, "reject 10.0.0.0/8:*"},
	{"accept 1.2.3.4/32:80", Rule{Accept: true, Prefix: pfx("1.2.3.4/32"), PortLo: 80, PortHi: 80}, "accept 1.2.3.4:80"},
	{"accept 0.0.0.0/0:80", Rule{Accept: true, Prefix: pfx("0.0.0.0/0"), PortLo: 80, PortHi: 80}, "accept *4:80"},
	{"accept *4:443", Rule{Accept: true, Prefix: pfx("0.0.0.0/0"), PortLo: 443, PortHi: 443}, "accept *4:443"},
	{"reject *6:1-1024", Rule{Prefix: pfx("::/0"), PortLo: 1, PortHi: 1024}, "reject *6:1-1024"},
	{"reject [::]/0:*", Rule{Prefix: pfx("::/0"), PortLo: 1, PortHi: 65535}, "reject *6:*"},
	{"accept [2001:db8::]/32:443", Rule{Accept: true, Prefix: pfx("2001:db8::/32"), PortLo: 443, PortHi: 443}, "accept [2001:db8::]/32:443"},
	{"accept [2001:DB8::1]:80", Rule{Accept: true, Prefix: pfx("2001:db8::1/128"), PortLo: 80, PortHi: 80}, "accept [2001:db8::1]:80"},
	{"accept [::1]/128:22", Rule{Accept: true, Prefix: pfx("::1/128"), PortLo: 22, PortHi: 22}, "accept [::1]:22"},
	{"accept 1.2.3.4:1-65535", Rule{Accept: true, Prefix: pfx("1.2.3.4/32"), PortLo: 1, PortHi: 65535}, "accept 1.2.3.4:*"},
	{"reject 1.2.3.4:80-80", Rule{Prefix: pfx("1.2.3.4/32"), PortLo: 80, PortHi: 80}, "reject 1.2.3.4:80"},
	{"reject 192.168.0.0/16:1000-2000", Rule{Prefix: pfx("192.168.0.0/16"), PortLo: 1000, PortHi: 2000}, "reject 192.168.0.0/16:1000-2000"},
	{"accept 0.0.0.0:1", Rule{Accept: true, Prefix: pfx("0.0.0.0/32"), PortLo: 1, PortHi: 1}, "accept 0.0.0.0:1"},
	{"accept [::]:1", Rule{Accept: true, Prefix: pfx("::/128"), PortLo: 1, PortHi: 1}, "accept [::]:1"},
}

var invalidRules = []struct {
	in, msg string
}{
	{"", "empty rule"},
	{"   ", "empty rule"},
	{"accept", "want accept|reject ADDR:PORT"},
	{"allow *:*", `unknown keyword "allow"`},
	{"accept 1.2.3:80", `bad address "1.2.3"`},
	{"accept 256.1.1.1:80", `bad address "256.1.1.1"`},
	{"accept example.com:80", `bad address "example.com"`},
	{"reject 10.0.0.0/33:*", "prefix length 33 out of range"},
	{"reject [::]/129:*", "prefix length 129 out of range"},
	{"reject 10.0.0.0/-1:*", `bad prefix length "-1"`},
	{"reject 10.0.0.0/:*", `bad prefix length ""`},
	{"reject 10.0.0.0/08:*", `bad prefix length "08"`},
	{"reject 1.2.3.4/32/32:80", `bad prefix length "32/32"`},
	{"reject 10.0.0.1/8:*", "prefix 10.0.0.1/8 has bits set beyond /8 (did you mean 10.0.0.0/8?)"},
	{"reject [::1]/64:*", "has bits set beyond /64"},
	{"accept 1.2.3.4:0", "port 0 out of range"},
	{"accept 1.2.3.4:65536", `bad port "65536"`},
	{"accept 1.2.3.4:99999999", `bad port "99999999"`},
	{"accept 1.2.3.4:80-22", "port range 80-22 is reversed"},
	{"accept 1.2.3.4:80-", "missing port"},
	{"accept 1.2.3.4:-80", "missing port"},
	{"accept 1.2.3.4:+80", `bad port "+80"`},
	{"accept 1.2.3.4:080", `bad port "080"`},
	{"accept 1.2.3.4:http", `bad port "http"`},
	{"accept *:1-2-3", `bad port "2-3"`},
	{"accept *:", "missing port"},
	{"accept 1.2.3.4", "missing :PORT"},
	{"accept ::1:80", "an IPv6 address must be in brackets"},
	{"accept 2001:db8::1:80", "an IPv6 address must be in brackets"},
	{"accept 1.2.3.4:80:90", "too many colons"},
	{"accept [::1]", "missing :PORT"},
	{"accept [::1]/64", "missing :PORT"},
	{"accept [::1:80", "missing ]"},
	{"accept [::1]x:80", "junk after ]"},
	{"accept [::1]:80/32", `bad port "80/32"`},
	{"accept [1.2.3.4]:80", "IPv4 address 1.2.3.4 in brackets"},
	{"accept [::ffff:127.0.0.1]:80", "IPv4-mapped address ::ffff:127.0.0.1: write it as IPv4 (127.0.0.1)"},
	{"accept [fe80::1%eth0]:80", "has a zone"},
	{"accept *:80 extra", `unexpected "extra" after ADDR:PORT`},
	{"accept *:80,reject *:25", `unexpected "*:25"`},
	{"accept */8:80", `bad address "*/8"`},
	{"accept *5:80", `bad address "*5"`},
	{"accept :80", "missing address"},
	{"accept\x00 *:*", "unknown keyword"},
}

func TestParseRule(t *testing.T) {
	for _, tc := range validRules {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRule(tc.in)
			if err != nil {
				t.Fatalf("ParseRule: %v", err)
			}
			if got != tc.want {
				t.Fatalf("ParseRule = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.canonical {
				t.Fatalf("String = %q, want %q", s, tc.canonical)
			}
			back, err := ParseRule(got.String())
			if err != nil || back != got {
				t.Fatalf("round trip of %q: %+v, %v", got.String(), back, err)
			}
		})
	}
	for _, tc := range invalidRules {
		t.Run("invalid/"+tc.in, func(t *testing.T) {
			r, err := ParseRule(tc.in)
			if err == nil {
				t.Fatalf("ParseRule = %v, want an error", r)
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Rule != tc.in || re.N != 0 {
				t.Fatalf("error %#v is not a RuleError for the rule", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			if r != (Rule{}) {
				t.Fatalf("ParseRule returned %+v with its error", r)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	rules, err := ParseRules([]string{"accept *:80", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Accept: true, Any: true, PortLo: 80, PortHi: 80},
		{Any: true, PortLo: 1, PortHi: 65535},
	}
	if !slices.Equal(rules, want) {
		t.Fatalf("ParseRules = %v, want %v", rules, want)
	}

	_, err = ParseRules([]string{"accept *:80", "reject *:25", "reject 10.0.0.0/33:*"})
	const msg = `exit policy rule 3 "reject 10.0.0.0/33:*": prefix length 33 out of range`
	if err == nil || err.Error() != msg {
		t.Fatalf("ParseRules error = %v, want %s", err, msg)
	}
	var re *RuleError
	if !errors.As(err, &re) || re.N != 3 {
		t.Fatalf("error %#v does not name rule 3", err)
	}

	if rules, err := ParseRules(nil); err != nil || len(rules) != 0 {
		t.Fatalf("ParseRules(nil) = %v, %v", rules, err)
	}
}

func TestSplitRules(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"accept 127.0.0.1:*, reject *:25", []string{"accept 127.0.0.1:*", "reject *:25"}},
		{"", nil},
		{" , ,\n", nil},
		{"accept *:80", []string{"accept *:80"}},
		{"accept *:80,,reject *:*,", []string{"accept *:80", "reject *:*"}},
		{"accept *:80\n  reject *:25 \r\n\taccept *:*", []string{"accept *:80", "reject *:25", "accept *:*"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := SplitRules(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("SplitRules(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// mustPolicy builds NewPolicy from a rule string as an operator writes it.
func mustPolicy(t testing.TB, rules string, own ...string) *Policy {
	t.Helper()
	parsed, err := ParseRules(SplitRules(rules))
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for _, a := range own {
		addrs = append(addrs, netip.MustParseAddr(a))
	}
	return NewPolicy(parsed, addrs)
}

type decision struct {
	addr string
	port uint16
	want bool
}

// defaultDecisions covers each range the default policy rejects with an
// address inside it and, where one exists, an address just outside it.
var defaultDecisions = []decision{
	{"0.0.0.0", 80, false}, {"0.255.255.255", 80, false}, {"1.0.0.0", 80, true},
	{"127.0.0.1", 80, false}, {"127.255.255.255", 80, false}, {"126.255.255.255", 80, true}, {"128.0.0.0", 80, true},
	{"10.0.0.0", 80, false}, {"10.255.255.255", 80, false}, {"9.255.255.255", 80, true}, {"11.0.0.0", 80, true},
	{"172.16.0.0", 80, false}, {"172.31.255.255", 80, false}, {"172.15.255.255", 80, true}, {"172.32.0.0", 80, true},
	{"192.168.0.0", 80, false}, {"192.168.255.255", 80, false}, {"192.167.255.255", 80, true}, {"192.169.0.0", 80, true},
	{"169.254.0.0", 80, false}, {"169.254.169.254", 80, false}, {"169.253.255.255", 80, true}, {"169.255.0.0", 80, true},
	{"100.64.0.0", 80, false}, {"100.127.255.255", 80, false}, {"100.63.255.255", 80, true}, {"100.128.0.0", 80, true},
	{"192.0.0.0", 80, false}, {"192.0.0.255", 80, false}, {"191.255.255.255", 80, true}, {"192.0.1.0", 80, true},
	{"198.18.0.0", 80, false}, {"198.19.255.255", 80, false}, {"198.17.255.255", 80, true}, {"198.20.0.0", 80, true},
	{"224.0.0.0", 80, false}, {"239.255.255.255", 80, false}, {"223.255.255.255", 80, true},
	{"240.0.0.0", 80, false}, {"255.255.255.255", 80, false},
	{"::", 80, false}, {"::1", 80, false},
	{"::2", 80, false}, {"::255.255.255.255", 80, false}, {"::1:0:0", 80, true},
	{"fe80::", 80, false}, {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 80, false}, {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 80, true},
	{"fec0::", 80, false}, {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 80, false},
	{"fc00::", 80, false}, {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 80, false}, {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 80, true}, {"fe00::", 80, true},
	{"ff00::", 80, false}, {"ff02::1", 80, false}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 80, false},
	{"64:ff9b:1::", 80, false}, {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", 80, false}, {"64:ff9b:2::", 80, true}, {"64:ff9b:0:ffff::", 80, true},
	{"::ffff:0:0:0", 80, false}, {"::ffff:0:ffff:ffff", 80, false}, {"::fffe:ffff:ffff:ffff", 80, true}, {"::ffff:1:0:0", 80, true},
	// Public addresses, including documentation ones, which are not rejected.
	{"8.8.8.8", 80, true}, {"8.8.8.8", 1, true}, {"8.8.8.8", 65535, true}, {"203.0.113.1", 443, true},
	{"2001:4860:4860::8888", 443, true}, {"2001:db8::1", 443, true},
	// IPv4-mapped IPv6 addresses are judged as IPv4.
	{"::ffff:127.0.0.1", 80, false}, {"::ffff:10.1.2.3", 80, false}, {"::ffff:169.254.169.254", 80, false}, {"::ffff:8.8.8.8", 80, true},
	// Transition ranges are judged by the IPv4 addresses they embed.
	{"64:ff9b::7f00:1", 80, false},                // NAT64 of 127.0.0.1
	{"64:ff9b::a00:1", 80, false},                 // NAT64 of 10.0.0.1
	{"64:ff9b::808:808", 80, true},                // NAT64 of 8.8.8.8
	{"2002:7f00:1::1", 80, false},                 // 6to4 via 127.0.0.1
	{"2002:c0a8:101::1", 80, false},               // 6to4 via 192.168.1.1
	{"2002:808:808::1", 80, true},                 // 6to4 via 8.8.8.8
	{"2001:0:808:808::f7f7:fbfb", 80, true},       // Teredo server 8.8.8.8, client 8.8.4.4
	{"2001:0:a00:1::f7f7:fbfb", 80, false},        // Teredo server 10.0.0.1
	{"2001:0:808:808::80ff:fffe", 80, false},      // Teredo client 127.0.0.1
	{"2001:0:808:808::f7f7:fbfb%eth0", 80, false}, // zoned
	// Port 0 is never allowed.
	{"8.8.8.8", 0, false},
}

func TestPolicyAllows(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		own   []string
		cases []decision
	}{
		{name: "default", cases: defaultDecisions},
		{
			name:  "operator opens one loopback address",
			rules: "accept 127.0.0.1:*",
			cases: []decision{
				{"127.0.0.1", 80, true}, {"127.0.0.1", 1, true}, {"::ffff:127.0.0.1", 22, true},
				{"127.0.0.2", 80, false}, {"127.0.0.0", 80, false}, {"10.0.0.1", 80, false}, {"8.8.8.8", 80, true},
			},
		},
		{
			name:  "broad accept does not open private ranges",
			rules: "accept *:80, accept *:443, reject *:*",
			own:   []string{"198.51.100.7"},
			cases: []decision{
				{"8.8.8.8", 80, true}, {"8.8.8.8", 443, true}, {"8.8.8.8", 22, false}, {"8.8.8.8", 25, false},
				{"2001:4860::1", 80, true},
				{"127.0.0.1", 80, false}, {"10.0.0.1", 443, false}, {"::1", 80, false}, {"fe80::1", 80, false},
				{"::ffff:192.168.1.1", 80, false}, {"198.51.100.7", 80, false}, {"198.51.100.8", 80, true},
			},
		},
		{
			name:  "first match wins",
			rules: "reject 8.8.8.0/24:25, accept 8.8.8.8:*, reject *:*",
			cases: []decision{
				{"8.8.8.8", 25, false}, {"8.8.8.8", 80, true}, {"8.8.8.9", 80, false}, {"8.8.4.4", 80, false},
			},
		},
		{
			name:  "later identical rule is dead",
			rules: "reject *:25, accept *:25",
			cases: []decision{{"8.8.8.8", 25, false}, {"8.8.8.8", 26, true}},
		},
		{
			name:  "port ranges",
			rules: "accept *:1000-2000, reject *:*",
			cases: []decision{
				{"8.8.8.8", 999, false}, {"8.8.8.8", 1000, true}, {"8.8.8.8", 1500, true},
				{"8.8.8.8", 2000, true}, {"8.8.8.8", 2001, false}, {"8.8.8.8", 65535, false},
			},
		},
		{
			name:  "reject all IPv4",
			rules: "reject *4:*",
			cases: []decision{
				{"8.8.8.8", 80, false}, {"::ffff:8.8.8.8", 80, false}, {"2001:4860::1", 80, true},
				{"64:ff9b::808:808", 80, false}, // NAT64 reaches IPv4
			},
		},
		{
			name:  "reject all IPv6",
			rules: "reject *6:*",
			cases: []decision{
				{"8.8.8.8", 80, true}, {"::ffff:8.8.8.8", 80, true}, {"2001:4860::1", 80, false},
			},
		},
		{
			name:  "IPv6 prefix",
			rules: "reject [2001:4860::]/32:*",
			cases: []decision{
				{"2001:4860::1", 80, false}, {"2001:4860:ffff::1", 80, false}, {"2001:4861::1", 80, true},
				{"32.1.72.96", 80, true}, // the same leading bits as IPv4
			},
		},
		{
			name:  "IPv4 rule against a mapped address",
			rules: "reject 8.8.8.8:*",
			cases: []decision{{"::ffff:8.8.8.8", 80, false}, {"8.8.8.8", 80, false}, {"64:ff9b::808:808", 80, false}, {"8.8.4.4", 80, true}},
		},
		{
			name: "own addresses",
			own:  []string{"203.0.113.7", "::ffff:198.51.100.1", "2001:db8::7", "fe80::1%eth0"},
			cases: []decision{
				{"203.0.113.7", 80, false}, {"203.0.113.8", 80, true}, {"::ffff:203.0.113.7", 80, false},
				{"198.51.100.1", 80, false}, {"::ffff:198.51.100.1", 80, false},
				{"2001:db8::7", 80, false}, {"2001:db8::8", 80, true},
			},
		},
		{
			name:  "operator opens one port of an own address",
			rules: "accept 203.0.113.7:22",
			own:   []string{"203.0.113.7"},
			cases: []decision{{"203.0.113.7", 22, true}, {"203.0.113.7", 80, false}},
		},
		{
			name:  "operator prefix inside a private range",
			rules: "accept 10.0.0.0/8:*",
			cases: []decision{{"10.1.2.3", 80, true}, {"::ffff:10.1.2.3", 80, true}, {"64:ff9b::a01:203", 80, true}, {"172.16.0.1", 80, false}},
		},
		{
			name:  "operator prefix over private ranges",
			rules: "accept 0.0.0.0/1:*",
			cases: []decision{{"10.1.2.3", 80, false}, {"127.0.0.1", 80, false}, {"8.8.8.8", 80, true}},
		},
		{
			name:  "nested default ranges",
			rules: "accept [::]/96:*",
			cases: []decision{{"::2", 80, true}, {"::1", 80, false}, {"::", 80, false}},
		},
		{
			name:  "zones are never allowed",
			rules: "accept [fe80::]/10:*",
			cases: []decision{{"fe80::1", 80, true}, {"fe80::1%eth0", 80, false}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, tc.rules, tc.own...)
			for _, d := range tc.cases {
				if got := p.Allows(netip.MustParseAddr(d.addr), d.port); got != d.want {
					t.Errorf("Allows(%s, %d) = %v, want %v", d.addr, d.port, got, d.want)
				}
			}
		})
	}

	if DefaultPolicy(nil).Allows(netip.Addr{}, 80) {
		t.Error("the zero Addr is allowed")
	}
	if (*Policy)(nil).Allows(netip.MustParseAddr("8.8.8.8"), 80) {
		t.Error("a nil policy allows")
	}
}

func TestPolicyRules(t *testing.T) {
	def := DefaultPolicy(nil)
	if NewPolicy(nil, nil).String() != def.String() {
		t.Fatal("DefaultPolicy(nil) differs from NewPolicy(nil, nil)")
	}
	lines := strings.Split(def.String(), "\n")
	if lines[0] != "reject 0.0.0.0/8:*" || lines[len(lines)-1] != "accept *:*" {
		t.Fatalf("default policy:\n%s", def)
	}
	for _, want := range []string{"reject 127.0.0.0/8:*", "reject [::1]:*", "reject [fc00::]/7:*", "reject 240.0.0.0/4:*"} {
		if !slices.Contains(lines, want) {
			t.Errorf("default policy lacks %q", want)
		}
	}

	p := mustPolicy(t, "accept *:80, reject *:*", "203.0.113.7")
	lines = strings.Split(p.String(), "\n")
	iAccept := slices.Index(lines, "accept *:80")
	iLoop := slices.Index(lines, "reject 127.0.0.0/8:80")
	iOwn := slices.Index(lines, "reject 203.0.113.7:80")
	if iAccept < 0 || iLoop < 0 || iOwn < 0 || iLoop > iAccept || iOwn > iAccept {
		t.Fatalf("broad accept is not preceded by the private rejects:\n%s", p)
	}
	if !slices.Contains(lines, "reject 203.0.113.7:*") {
		t.Fatalf("own address is not rejected:\n%s", p)
	}

	// Rules is a copy, and each line of String parses back to its rule.
	rules := p.Rules()
	rules[0] = Rule{}
	if p.Rules()[0] == (Rule{}) {
		t.Fatal("Rules returned the policy's own slice")
	}
	parsed, err := ParseRules(SplitRules(p.String()))
	if err != nil || !slices.Equal(parsed, p.Rules()) {
		t.Fatalf("String does not parse back to Rules: %v", err)
	}
	// Rebuilding from the effective rules keeps the same decisions.
	again := NewPolicy(parsed, nil)
	for _, d := range defaultDecisions {
		a := netip.MustParseAddr(d.addr)
		if again.Allows(a, d.port) != p.Allows(a, d.port) {
			t.Errorf("rebuilt policy differs at %s:%d", d.addr, d.port)
		}
	}
}

func TestAcceptsPort(t *testing.T) {
	tests := []struct {
		rules string
		yes   []uint16
		no    []uint16
	}{
		{rules: "", yes: []uint16{1, 80, 65535}, no: []uint16{0}},
		{rules: "accept *:80, accept *:443, reject *:*", yes: []uint16{80, 443}, no: []uint16{22, 81, 0}},
		{rules: "accept 127.0.0.1:*, reject *:*", no: []uint16{22, 80}},
		{rules: "accept 10.0.0.0/8:*, accept [fc00::]/7:22, reject *:*", no: []uint16{22, 80}},
		{rules: "accept 8.8.8.8:53, reject *:*", yes: []uint16{53}, no: []uint16{54}},
		{rules: "reject *4:*, accept *:80, reject *:*", yes: []uint16{80}, no: []uint16{443}},
		{rules: "reject *4:*, reject *6:*", no: []uint16{1, 80, 65535}},
		{rules: "reject *:*", no: []uint16{80}},
		{rules: "reject 0.0.0.0/1:*, reject 128.0.0.0/1:*, reject *6:*", no: []uint16{80}},
		{rules: "reject 0.0.0.0/1:*, reject 128.0.0.0/2:*, reject *6:*", yes: []uint16{80}},
		{rules: "reject *6:*, reject 0.0.0.0/1:*, reject 128.0.0.0/2:*, reject 192.0.0.0/3:*, reject 224.0.0.0/3:*", no: []uint16{80}},
		{rules: "accept [64:ff9b::]/96:80, accept [2002::]/16:80, reject *:*", no: []uint16{80}},
		{rules: "reject *4:80, accept [2001:4860::]/32:80, reject *:*", yes: []uint16{80}},
		{rules: "reject 8.8.8.8:1-100, accept 8.8.8.8:1-200, reject *:*", yes: []uint16{150}, no: []uint16{50}},
	}
	for _, tc := range tests {
		t.Run(tc.rules, func(t *testing.T) {
			p := mustPolicy(t, tc.rules)
			for _, port := range tc.yes {
				if !p.AcceptsPort(port) {
					t.Errorf("AcceptsPort(%d) = false", port)
				}
				w, ok := p.publicWitness(port)
				if !ok || !p.Allows(w, port) || !isPublic(w) {
					t.Errorf("witness for port %d: %v %v, not an allowed public address", port, w, ok)
				}
			}
			for _, port := range tc.no {
				if p.AcceptsPort(port) {
					t.Errorf("AcceptsPort(%d) = true", port)
				}
			}
		})
	}
}

// isPublic reports whether AcceptsPort counts a as public.
func isPublic(a netip.Addr) bool {
	for _, p := range publicSpace {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestPublicSpace(t *testing.T) {
	for _, a := range []string{"8.8.8.8", "1.0.0.0", "223.255.255.255", "2001:4860::1", "4000::1", "::1:0:0"} {
		if !isPublic(netip.MustParseAddr(a)) {
			t.Errorf("%s is not public", a)
		}
	}
	for _, a := range []string{"127.0.0.1", "10.0.0.1", "::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::", "2001::1", "fe80::1"} {
		if isPublic(netip.MustParseAddr(a)) {
			t.Errorf("%s is public", a)
		}
	}
}

func TestSubtractPrefix(t *testing.T) {
	got := subtractPrefix([]netip.Prefix{pfx("10.0.0.0/8"), pfx("::/0")}, pfx("10.64.0.0/10"))
	want := []netip.Prefix{pfx("10.128.0.0/9"), pfx("10.0.0.0/10"), pfx("::/0")}
	if !slices.Equal(got, want) {
		t.Fatalf("subtractPrefix = %v, want %v", got, want)
	}
	if got := subtractPrefix([]netip.Prefix{pfx("10.1.0.0/16")}, pfx("10.0.0.0/8")); len(got) != 0 {
		t.Fatalf("subtracting a covering prefix left %v", got)
	}
	if got := subtractPrefix([]netip.Prefix{pfx("10.1.0.0/16")}, pfx("10.2.0.0/16")); !slices.Equal(got, []netip.Prefix{pfx("10.1.0.0/16")}) {
		t.Fatalf("subtracting a disjoint prefix gave %v", got)
	}
}

func BenchmarkPolicyAllows(b *testing.B) {
	p := mustPolicy(b, "accept *:80, accept *:443, reject *:*", "203.0.113.7")
	addrs := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:4860::8888"), netip.MustParseAddr("::ffff:10.0.0.1")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Allows(addrs[i%len(addrs)], 443)
	}
	b.ReportMetric(float64(len(p.Rules())), "rules")
}

func BenchmarkAcceptsPort(b *testing.B) {
	p := mustPolicy(b, "reject 8.8.8.0/24:*, reject 1.0.0.0/8:*, accept *:80, accept *:443, reject *:*")
	b.ReportAllocs()
	for b.Loop() {
		p.AcceptsPort(443)
	}
}
