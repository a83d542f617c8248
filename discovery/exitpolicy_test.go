package discovery

import (
	"reflect"
	"testing"

	"github.com/pikcio/pikcio/exitnode"
)

// TestPortSummaryOfExitPolicy summarizes real exit policies the way a relay
// fills RelayInfo.ExitPorts.
func TestPortSummaryOfExitPolicy(t *testing.T) {
	for _, c := range []struct {
		rules string
		want  []PortRange
	}{
		{"accept *:80, accept *:443, reject *:*", []PortRange{{80, 80}, {443, 443}}},
		{"reject *:25, reject *:6660-6669", []PortRange{{1, 24}, {26, 6659}, {6670, 65535}}},
		{"accept 10.0.0.0/8:*, reject *:*", nil}, // private addresses only: no public port
		{"reject *:*", nil},
	} {
		t.Run(c.rules, func(t *testing.T) {
			rules, err := exitnode.ParseRules(exitnode.SplitRules(c.rules))
			if err != nil {
				t.Fatal(err)
			}
			got := PortSummary(exitnode.NewPolicy(rules, nil).AcceptsPort)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("summary %v, want %v", got, c.want)
			}
		})
	}
}
