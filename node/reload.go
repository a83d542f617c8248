package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/exitnode"
)

// Apply makes a new configuration take effect; it is a config.ApplyFunc
// for config.Watcher. Everything applies to new work only: open circuits
// and streams are kept.
//
//   - log.level, log.format: the process's logging (SetupLogging).
//   - relay.exit_policy: the exit's next connection; the descriptor is
//     republished with the new port summary.
//   - relay caps and bandwidth: the relay's next circuit, handshake or cell.
//   - client.hops: the next circuit built.
//   - client dirtiness, prebuilt circuits, timeouts: the pool's next use.
//   - [[services]]: service.Manager.Apply (a new block starts a service,
//     a removed one stops, a new target applies to new streams).
//
// Other changed keys (listen addresses, roles, data directory, bootstrap
// peers) are logged as needing a restart and are not applied. Apply fails,
// changing nothing, if the new configuration is invalid.
func (n *Node) Apply(prev, next *config.Config) error {
	if err := next.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// Everything that can fail comes before any change.
	var policy *exitnode.Policy
	if n.exit != nil && !slices.Equal(prev.Relay.ExitPolicy, next.Relay.ExitPolicy) {
		p, err := n.exitPolicy(next.Relay.ExitPolicy)
		if err != nil {
			return err
		}
		policy = p
	}
	if m := n.services(); m != nil && !slices.Equal(prev.Services, next.Services) {
		if err := m.Apply(n.serviceConfigs(next)); err != nil {
			return fmt.Errorf("services: %w", err)
		}
	}
	if err := SetupLogging(next.Log); err != nil {
		return err
	}

	n.mu.Lock()
	relay, pool, pool6 := n.relay, n.pool, n.pool6
	n.cfg = next.Clone()
	n.mu.Unlock()
	if policy != nil {
		n.exit.SetPolicy(policy)
		n.disc.Republish()
		n.log.Info("exit policy changed; it applies to new connections")
	}
	if relay != nil {
		relay.SetLimits(next.Relay.Limits())
	}
	if next.Client.Hops != prev.Client.Hops && n.client {
		warnShortCircuits(n.log, next.Client.Hops)
	}
	n.hops.Store(int64(next.Client.Hops))
	if n.trust != nil {
		n.trust.Apply(next.Trust.Settings())
	}
	if pool != nil {
		pool.SetOptions(next.Client.PoolOptions())
	}
	if pool6 != nil {
		o := next.Client.PoolOptions()
		o.Prebuilt = -1
		pool6.SetOptions(o)
	}
	restart := config.RestartKeys(prev, next)
	if len(restart) > 0 {
		n.log.Warnf("changed settings that take effect only after a restart: %s", strings.Join(restart, ", "))
	}
	return nil
}
