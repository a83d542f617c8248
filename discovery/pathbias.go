package discovery

import (
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Path bias, after Tor's path-spec ("Path bias detection"): a guard that
// tampers with cells cannot read them (every layer after it garbles a
// changed cell), but it can destroy the circuits whose exit it does not
// also run, and so leave its clients only the ones it can watch at both
// ends. The client counts, per guard, the circuits built through it and
// those that then failed for integrity or protocol (ReportCircuitFailure);
// when at least PathBiasMinCircuits were built and more than
// PathBiasMaxFailRate of them failed, it warns once and stops using the
// guard for good. Refusals for lack of resources and failures to build
// are not counted here: they are the guard-failure count's business.
const (
	DefaultPathBiasMinCircuits = 20
	DefaultPathBiasMaxFailRate = 0.3
)

// PathBias sets the path-bias thresholds (defaults
// DefaultPathBiasMinCircuits and DefaultPathBiasMaxFailRate).
func PathBias(minCircuits int, maxFailRate float64) Option {
	return func(o *options) error {
		if minCircuits < 1 || maxFailRate <= 0 || maxFailRate >= 1 {
			return fmt.Errorf("path bias %d circuits, rate %v: %w", minCircuits, maxFailRate, errOption)
		}
		o.guards.pbMinCircuits, o.guards.pbMaxFailRate = minCircuits, maxFailRate
		return nil
	}
}

// ReportCircuitFailure tells that a circuit built through path failed after
// it was built, for integrity or protocol (the caller classifies: a circuit
// the client closed, or that a relay closed for lack of resources, is not
// such a failure). It counts against the guard; see PathBias.
func (d *Discovery) ReportCircuitFailure(path []*Descriptor) {
	if len(path) < 2 {
		return
	}
	id := path[0].PeerID
	info, dropped, err := d.guards.markCircuitFailure(id)
	if err != nil {
		d.log.WithError(err).Warn("save entry guards")
	}
	if dropped {
		d.log.WithField("guard", id).WithField("circuits", info.Circuits).WithField("failed", info.CircuitFailures).
			Warn("entry guard dropped: too many of its circuits failed after they were built (path bias)")
	}
}

// markCircuitFailure counts a failure after build against guard id, and
// drops and disables the guard when its failure rate passes the threshold.
// It reports the guard's counts and whether it was dropped.
func (g *guardSet) markCircuitFailure(id peer.ID) (GuardInfo, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.IndexFunc(g.guards, func(gi GuardInfo) bool { return gi.ID == id })
	if i < 0 {
		return GuardInfo{}, false, nil
	}
	gi := &g.guards[i]
	gi.CircuitFailures++
	if gi.CircuitFailures > gi.Circuits {
		gi.Circuits = gi.CircuitFailures // a failure implies a circuit
	}
	info := *gi
	if gi.Circuits < g.cfg.pbMinCircuits || float64(gi.CircuitFailures) <= g.cfg.pbMaxFailRate*float64(gi.Circuits) {
		return info, false, g.save()
	}
	g.guards = slices.Delete(g.guards, i, i+1)
	g.disabled[id] = true
	return info, true, g.save()
}
