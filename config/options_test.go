package config

import (
	"fmt"
	"testing"
	"time"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/proxy"
)

// TestDefaultOptions: the default configuration maps back to the owning
// packages' defaults (one source for each default).
func TestDefaultOptions(t *testing.T) {
	c := Default()
	if got, want := c.Relay.RelayOptions(), circuit.DefaultRelayOptions(); got.Limits() != want.Limits() {
		t.Errorf("relay limits %+v, want circuit's %+v", got.Limits(), want.Limits())
	}
	if got, want := c.Relay.Limits(), circuit.DefaultRelayOptions().Limits(); got != want {
		t.Errorf("live limits %+v, want %+v", got, want)
	}
	po := c.Client.PoolOptions()
	if po.Prebuilt != proxy.DefaultPrebuilt || po.Dirtiness != proxy.DefaultDirtiness ||
		po.ConnectTimeout != proxy.DefaultConnectTimeout || po.BuildTimeout != proxy.DefaultBuildTimeout {
		t.Errorf("pool options %+v, want proxy's defaults", po)
	}
}

func TestSectionOptions(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		check func(*testing.T, *Config)
	}{
		{"no prebuilt circuits", func(c *Config) { c.Client.PrebuiltCircuits = 0 }, func(t *testing.T, c *Config) {
			if p := c.Client.PoolOptions().Prebuilt; p != -1 {
				t.Errorf("Prebuilt %d, want -1 (none)", p)
			}
		}},
		{"relay caps", func(c *Config) {
			c.Relay.MaxCircuitsPerPeer, c.Relay.HandshakesPerSecond, c.Relay.BandwidthRate = 7, 10, 1<<20
		}, func(t *testing.T, c *Config) {
			l := c.Relay.RelayOptions().Limits()
			if l.MaxCircuitsPerPeer != 7 || l.HandshakesPerSecond != 10 || l.HandshakeBurst != 20 || l.BandwidthRate != 1<<20 {
				t.Errorf("limits %+v", l)
			}
			if l.MaxCircuits != circuit.DefaultRelayOptions().MaxCircuits {
				t.Errorf("MaxCircuits %d, want circuit's default", l.MaxCircuits)
			}
		}},
		{"trust", func(c *Config) {
			c.Trust.MinGuardScore, c.Trust.PreferContactGuards, c.Trust.Refresh = 50, false, Duration(time.Minute)
		}, func(t *testing.T, c *Config) {
			s := c.Trust.Settings()
			if s.MinGuardScore != 50 || s.PreferContactGuards || s.Refresh != time.Minute {
				t.Errorf("settings %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(c)
			tt.check(t, c)
		})
	}
}

func TestKeys(t *testing.T) {
	const key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	tests := []struct {
		name      string
		root      string
		attesters []string
		roots     bool
		wantErr   bool
	}{
		{"none", "", nil, false, false},
		{"both", key, []string{key, " " + key + " "}, true, false},
		{"bad root", "AAAA", nil, false, true},
		{"bad attester", key, []string{"nope"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.TIS.RootKey, c.Trust.Attesters = tt.root, tt.attesters
			root, rerr := c.TIS.Root()
			keys, aerr := c.Trust.AttesterKeys()
			if (root != nil) != tt.roots || (rerr != nil || aerr != nil) != tt.wantErr {
				t.Fatalf("Root = %x, %v; AttesterKeys = %d, %v", root, rerr, len(keys), aerr)
			}
			if aerr == nil && len(keys) != len(tt.attesters) {
				t.Fatalf("%d attester keys, want %d", len(keys), len(tt.attesters))
			}
			if verr := c.Validate(); (verr != nil) != tt.wantErr {
				t.Fatalf("Validate: %v, want an error: %v", verr, tt.wantErr)
			}
		})
	}
}

func TestRestartKeys(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"live only", func(c *Config) { c.Client.Hops, c.Log.Level, c.Trust.MinExitScore = 4, "debug", 10 }, nil},
		{"listen", func(c *Config) { c.Client.SOCKSListen = "127.0.0.1:1" }, []string{"client.socks_listen"}},
		{"mixed", func(c *Config) { c.Client.Hops, c.Relay.Exit = 4, true }, []string{"relay.exit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := Default()
			next := prev.Clone()
			tt.edit(next)
			if got := RestartKeys(prev, next); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("RestartKeys = %v, want %v", got, tt.want)
			}
		})
	}
}
