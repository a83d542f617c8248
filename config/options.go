package config

import (
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// The sections as the owning packages' options: what node passes at start
// and on a reload.

// RelayOptions are the circuit relay's options with the section's caps
// (circuit's defaults for the rest).
func (rc RelayConfig) RelayOptions() circuit.RelayOptions {
	return circuit.DefaultRelayOptions().WithLimits(rc.Limits())
}

// Limits are the relay's live limits (circuit.Relay.SetLimits). The
// handshake burst is two seconds' worth, as in circuit's defaults.
func (rc RelayConfig) Limits() circuit.Limits {
	return circuit.Limits{
		MaxCircuitsPerPeer:   rc.MaxCircuitsPerPeer,
		MaxCircuits:          circuit.DefaultRelayOptions().MaxCircuits,
		MaxStreamsPerCircuit: rc.MaxStreamsPerCircuit,
		HandshakesPerSecond:  float64(rc.HandshakesPerSecond),
		HandshakeBurst:       2 * rc.HandshakesPerSecond,
		BandwidthRate:        rc.BandwidthRate,
		BandwidthBurst:       rc.BandwidthBurst,
	}
}

// PoolOptions are the circuit pool's options; prebuilt_circuits = 0 means
// none (the pool reads 0 as its default).
func (cc ClientConfig) PoolOptions() proxy.PoolOptions {
	prebuilt := cc.PrebuiltCircuits
	if prebuilt == 0 {
		prebuilt = -1
	}
	return proxy.PoolOptions{
		Prebuilt:       prebuilt,
		Dirtiness:      cc.CircuitDirtiness.D(),
		ConnectTimeout: cc.ConnectTimeout.D(),
		BuildTimeout:   cc.BuildTimeout.D(),
	}
}

// Settings are the [trust] settings that can change while running.
func (tc TrustConfig) Settings() trust.Settings {
	return trust.Settings{
		MinGuardScore:       tc.MinGuardScore,
		MinExitScore:        tc.MinExitScore,
		PreferContactGuards: tc.PreferContactGuards,
		Refresh:             tc.Refresh.D(),
	}
}

// Root is tis.root_key, nil when unset.
func (ts TISConfig) Root() (ed25519.PublicKey, error) {
	if ts.RootKey == "" {
		return nil, nil
	}
	k, err := tis.ParseKey(ts.RootKey)
	if err != nil {
		return nil, fmt.Errorf("tis.root_key: %w", err)
	}
	return k, nil
}

// AttesterKeys are trust.attesters.
func (tc TrustConfig) AttesterKeys() ([]ed25519.PublicKey, error) {
	keys := []ed25519.PublicKey{}
	for _, a := range tc.Attesters {
		k, err := tis.ParseKey(a)
		if err != nil {
			return nil, fmt.Errorf("trust.attesters: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// liveKeys are the settings a running node applies (node.Apply, for
// config.Watcher); every other key takes effect at the next start.
var liveKeys = []string{
	"log.level",
	"log.format",
	"client.hops",
	"client.circuit_dirtiness",
	"client.prebuilt_circuits",
	"client.connect_timeout",
	"client.build_timeout",
	"relay.exit_policy",
	"relay.max_circuits_per_peer",
	"relay.max_streams_per_circuit",
	"relay.handshakes_per_second",
	"relay.bandwidth_rate",
	"relay.bandwidth_burst",
	"trust.refresh",
	"trust.min_guard_score",
	"trust.min_exit_score",
	"trust.prefer_contact_guards",
	"services",
}

// RestartKeys are the keys that differ between prev and next (Diff) and
// that a running node applies only at its next start.
func RestartKeys(prev, next *Config) []string {
	var restart []string
	for _, k := range Diff(prev, next) {
		if !slices.Contains(liveKeys, k) {
			restart = append(restart, k)
		}
	}
	return restart
}
