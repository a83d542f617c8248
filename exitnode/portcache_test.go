package exitnode

import "testing"

// TestAcceptsPortCache checks the per-span cache of AcceptsPort against the
// direct computation, at every rule's range ends, their neighbours, and a
// spread of other ports.
func TestAcceptsPortCache(t *testing.T) {
	policies := []string{
		"",
		"reject *:*",
		"accept *:80, accept *:443, reject *:*",
		"reject *:25, reject *:119, reject *:135-139, reject *:445, reject *:563, reject *:1214, reject *:4661-4666, reject *:6346-6429, reject *:6699, reject *:6881-6999",
		"accept 127.0.0.1:*, reject 1.0.0.0/8:1-1024, accept *:1000-2000, reject *4:*",
		"reject [2001:db8::]/32:*, accept *6:443, reject *:*",
	}
	for _, text := range policies {
		rules, err := ParseRules(SplitRules(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		p := NewPolicy(rules, nil)
		ports := map[uint16]bool{1: true, 65535: true}
		for _, r := range p.public {
			for _, q := range []int{int(r.PortLo) - 1, int(r.PortLo), int(r.PortHi), int(r.PortHi) + 1} {
				if q >= 1 && q <= 65535 {
					ports[uint16(q)] = true
				}
			}
		}
		for q := 1; q <= 65535; q += 97 {
			ports[uint16(q)] = true
		}
		for port := range ports {
			_, want := p.publicWitness(port)
			if got := p.AcceptsPort(port); got != want {
				t.Errorf("%q: AcceptsPort(%d) = %v, direct %v", text, port, got, want)
			}
		}
	}
}

func BenchmarkAcceptsPortAll(b *testing.B) {
	rules, _ := ParseRules(SplitRules("reject *:25, reject *:135-139, accept *:*"))
	for i := 0; i < b.N; i++ {
		p := NewPolicy(rules, nil)
		for port := 1; port <= 65535; port++ {
			p.AcceptsPort(uint16(port))
		}
	}
}
