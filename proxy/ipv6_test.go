package proxy_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/pikcio/pikcio/proxy"
)

// namedDialer fails every dial with its own error, so that a test sees
// which dialer a stream went to.
type namedDialer struct{ err error }

func (d namedDialer) Dial(context.Context, string, string, uint16) (net.Conn, error) {
	return nil, d.err
}

func TestSplitIPv6(t *testing.T) {
	main, v6 := errors.New("main"), errors.New("v6")
	d := proxy.SplitIPv6(namedDialer{main}, namedDialer{v6})
	cases := []struct {
		host string
		want error
	}{
		{"::1", v6},
		{"2001:db8::1", v6},
		{"fe80::1%eth0", v6},
		{"::ffff:127.0.0.1", main}, // IPv4-mapped: the main pool
		{"127.0.0.1", main},
		{"example.com", main}, // resolved at the exit
		{"[::1]", main},       // not a literal as proxies hand it over
		{"", main},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			if _, err := d.Dial(t.Context(), "k", tc.host, 80); !errors.Is(err, tc.want) {
				t.Fatalf("%q went to %v, want %v", tc.host, err, tc.want)
			}
		})
	}
}
