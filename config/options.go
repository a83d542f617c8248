package config

import (
	"crypto/ed25519"
	"fmt"

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
