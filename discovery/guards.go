package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pikcio/pikcio/internal/privfile"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// GuardsFile is the name of the entry guard file in the data directory.
const GuardsFile = "guards.json"

const guardFileVersion = 1

// ErrGuardFile reports a guard file that cannot be read.
var ErrGuardFile = errors.New("bad guard file")

// GuardInfo is one entry guard, in order of preference.
type GuardInfo struct {
	ID      peer.ID   `json:"id"`
	Added   time.Time `json:"added"`
	Expires time.Time `json:"expires"` // Added plus a random lifetime
	// Failures counts consecutive failures to reach the guard.
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// Circuits counts circuits built through the guard, CircuitFailures
	// those of them that failed afterwards for integrity or protocol
	// (path bias, see pathbias.go).
	Circuits        int `json:"circuits,omitempty"`
	CircuitFailures int `json:"circuit_failures,omitempty"`
	// MissingSince is when a refreshed directory first lacked the guard.
	// It is not persisted: absence is only counted while the node runs.
	MissingSince time.Time `json:"-"`
}

type guardFile struct {
	Version int         `json:"version"`
	Guards  []GuardInfo `json:"guards"`
	// Disabled are former guards dropped for path bias: never sampled
	// again.
	Disabled []peer.ID `json:"path_bias_disabled,omitempty"`
}

type guardConfig struct {
	n           int
	maxFailures int
	lifetimeMin time.Duration
	lifetimeMax time.Duration
	absentLimit time.Duration
	// Path bias: a guard with at least pbMinCircuits circuits of which
	// more than pbMaxFailRate failed after building is dropped.
	pbMinCircuits int
	pbMaxFailRate float64
}

// guardSet is a client's small, persistent, ordered set of entry guards.
// Guards leave it only when their lifetime ends, after maxFailures
// consecutive failures, or after being absent from the directory for
// absentLimit; new ones are sampled only to fill the set. So a relay
// becomes a client's first hop only by being sampled, never by waiting.
type guardSet struct {
	mu     sync.Mutex
	path   string // "" keeps the set in memory only
	cfg    guardConfig
	sel    *Selector
	guards []GuardInfo
	// disabled: dropped for path bias, never sampled again.
	disabled map[peer.ID]bool
}

func loadGuardSet(path string, cfg guardConfig, sel *Selector) (*guardSet, error) {
	g := &guardSet{path: path, cfg: cfg, sel: sel, disabled: map[peer.ID]bool{}}
	if path == "" {
		return g, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read guards: %w", err)
	}
	var f guardFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", path, ErrGuardFile, err)
	}
	if f.Version != guardFileVersion {
		return nil, fmt.Errorf("%s version %d: %w", path, f.Version, ErrGuardFile)
	}
	seen := map[peer.ID]bool{}
	for _, gi := range f.Guards {
		if gi.ID.Validate() != nil || seen[gi.ID] {
			return nil, fmt.Errorf("%s: guard %q: %w", path, gi.ID, ErrGuardFile)
		}
		seen[gi.ID] = true
		g.guards = append(g.guards, gi)
	}
	for _, id := range f.Disabled {
		if id.Validate() == nil {
			g.disabled[id] = true
		}
	}
	return g, nil
}

// save writes the set atomically (temporary file, then rename), mode 0600.
// The caller holds g.mu.
func (g *guardSet) save() error {
	if g.path == "" {
		return nil
	}
	f := guardFile{Version: guardFileVersion, Guards: g.guards}
	for id := range g.disabled {
		f.Disabled = append(f.Disabled, id)
	}
	slices.Sort(f.Disabled)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode guards: %w", err)
	}
	if err := privfile.Replace(g.path, append(b, '\n')); err != nil {
		return fmt.Errorf("save guards: %w", err)
	}
	return nil
}

// prune drops guards whose lifetime ended, that failed too often, or that
// have been missing from the directory too long. Failures only count while
// some other guard is not failing: when every guard fails, the node's own
// network is the likelier culprit, and replacing them all would hand the
// first hop to whoever answers next. The caller holds g.mu.
func (g *guardSet) prune(now time.Time) bool {
	n := len(g.guards)
	someOK := slices.ContainsFunc(g.guards, func(gi GuardInfo) bool { return gi.Failures == 0 })
	g.guards = slices.DeleteFunc(g.guards, func(gi GuardInfo) bool {
		return !now.Before(gi.Expires) ||
			(someOK && gi.Failures >= g.cfg.maxFailures) ||
			(!gi.MissingSince.IsZero() && now.Sub(gi.MissingSince) > g.cfg.absentLimit)
	})
	return len(g.guards) != n
}

// fill samples guards from relays until the set has n. The caller holds g.mu.
func (g *guardSet) fill(relays []*Descriptor, now time.Time) (bool, error) {
	changed := false
	for len(g.guards) < g.cfg.n {
		excluded := maps.Clone(g.disabled)
		var current []*Descriptor
		for _, gi := range g.guards {
			excluded[gi.ID] = true
			if i := slices.IndexFunc(relays, func(d *Descriptor) bool { return d.PeerID == gi.ID }); i >= 0 {
				current = append(current, relays[i])
			}
		}
		var valid []*Descriptor
		for _, d := range relays {
			if g.sel.usable(d, now) {
				valid = append(valid, d)
			}
		}
		d, err := g.sel.selection().pick(valid, RoleGuard, 0, current, excluded)
		if err != nil {
			return changed, err
		}
		if d == nil {
			break
		}
		r, err := g.sel.randFloat()
		if err != nil {
			return changed, err
		}
		life := g.cfg.lifetimeMin + time.Duration(r*float64(g.cfg.lifetimeMax-g.cfg.lifetimeMin))
		g.guards = append(g.guards, GuardInfo{ID: d.PeerID, Added: now.UTC(), Expires: now.Add(life).UTC()})
		changed = true
	}
	return changed, nil
}

// refresh prunes and fills the set, saving it if it changed, and returns
// the guards in order of preference.
func (g *guardSet) refresh(relays []*Descriptor, now time.Time) ([]peer.ID, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	changed := g.prune(now)
	filled, err := g.fill(relays, now)
	if filled || changed {
		if serr := g.save(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	ids := make([]peer.ID, len(g.guards))
	for i, gi := range g.guards {
		ids[i] = gi.ID
	}
	return ids, err
}

// observe records which guards a freshly refreshed directory lacks.
func (g *guardSet) observe(present func(peer.ID) bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.guards {
		switch {
		case present(g.guards[i].ID):
			g.guards[i].MissingSince = time.Time{}
		case g.guards[i].MissingSince.IsZero():
			g.guards[i].MissingSince = now
		}
	}
}

// markFailure counts a failure to reach guard id and reports whether id is
// one of the guards.
func (g *guardSet) markFailure(id peer.ID, now time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.IndexFunc(g.guards, func(gi GuardInfo) bool { return gi.ID == id })
	if i < 0 {
		return false, nil
	}
	g.guards[i].Failures++
	g.guards[i].LastFailure = now.UTC()
	return true, g.save()
}

// markSuccess clears the failure count of guard id and counts a circuit
// built through it (saved with the next change that is).
func (g *guardSet) markSuccess(id peer.ID) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.IndexFunc(g.guards, func(gi GuardInfo) bool { return gi.ID == id })
	if i < 0 {
		return nil
	}
	g.guards[i].Circuits++
	if g.guards[i].Failures == 0 {
		return nil
	}
	g.guards[i].Failures = 0
	return g.save()
}

func (g *guardSet) list() []GuardInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.guards)
}
