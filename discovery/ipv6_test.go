package discovery

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A path for an IPv6 destination ends at an exit whose descriptor says it
// reaches IPv6, with and without guards; without such an exit there is no
// path. The extension survives signing and decoding.
func TestSelectIPv6Exit(t *testing.T) {
	now := time.Now()
	var relays []*Descriptor
	for i := range 8 {
		flags := FlagRelay | FlagGuard
		if i >= 4 {
			flags |= FlagExit
		}
		d, _ := signedDescriptor(t, newKey(t), now, func(d *Descriptor) {
			d.Flags, d.ExitPorts = flags, []PortRange{{1, 65535}}
			d.Addrs = append(d.Addrs[:0], mustAddr(t, fmt.Sprintf("/ip4/10.%d.0.1/tcp/4001", i)))
			if i == 7 {
				d.Extensions = append(d.Extensions, IPv6ExitExtension())
			}
		})
		relays = append(relays, d)
	}
	v6 := relays[7]
	if !v6.ExitsIPv6() || relays[6].ExitsIPv6() {
		t.Fatal("ExitsIPv6 after signing and decoding")
	}
	s := &Selector{}
	for range 20 {
		p, err := s.Select(relays, PathRequest{Port: 443, IPv6: true}, nil)
		if err != nil || p[len(p)-1].PeerID != v6.PeerID {
			t.Fatalf("IPv6 path %v, %v: want the IPv6 exit", p, err)
		}
		p, err = s.Select(relays, PathRequest{Port: 443, IPv6: true}, []peer.ID{relays[0].PeerID, relays[1].PeerID})
		if err != nil || p[len(p)-1].PeerID != v6.PeerID {
			t.Fatalf("IPv6 path with guards %v, %v: want the IPv6 exit", p, err)
		}
	}
	if _, err := s.Select(relays[:7], PathRequest{Port: 443, IPv6: true}, nil); !errors.Is(err, ErrNoExit) {
		t.Fatalf("no IPv6 exit: %v, want ErrNoExit", err)
	}
}
