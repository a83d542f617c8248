package discovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func testGuardConfig() guardConfig {
	return guardConfig{
		n:           3,
		maxFailures: 2,
		lifetimeMin: DefaultGuardLifetimeMin,
		lifetimeMax: DefaultGuardLifetimeMax,
		absentLimit: 3 * time.Hour,
	}
}

func guardIDs(g []GuardInfo) []peer.ID {
	out := make([]peer.ID, len(g))
	for i, gi := range g {
		out[i] = gi.ID
	}
	return out
}

func TestGuardSet(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	relays := fabricateNet(t, now.Add(-time.Minute), 20)
	// Long-lived descriptors, so the clock may jump ahead below.
	for _, d := range relays {
		d.Expires, d.OnionKey.Expires = now.Add(100*24*time.Hour), now.Add(100*24*time.Hour)
	}
	path := filepath.Join(t.TempDir(), GuardsFile)
	sel := &Selector{}
	g, err := loadGuardSet(path, testGuardConfig(), sel)
	if err != nil {
		t.Fatal(err)
	}
	order, err := g.refresh(relays, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 {
		t.Fatalf("%d guards, want 3", len(order))
	}
	byID := map[peer.ID]*Descriptor{}
	for _, d := range relays {
		byID[d.PeerID] = d
	}
	for i, id := range order {
		if !byID[id].Flags.Has(FlagGuard) {
			t.Fatalf("guard %d lacks the guard flag", i)
		}
		for _, other := range order[:i] {
			if sameSubnet(byID[id], byID[other]) {
				t.Fatal("two guards in one /16")
			}
		}
	}
	for _, gi := range g.list() {
		life := gi.Expires.Sub(gi.Added)
		if life < DefaultGuardLifetimeMin || life > DefaultGuardLifetimeMax {
			t.Fatalf("guard lifetime %v", life)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("guard file mode %v", fi.Mode().Perm())
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".guards-*")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}

	t.Run("reload", func(t *testing.T) {
		g2, err := loadGuardSet(path, testGuardConfig(), sel)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g2.list(), g.list()) {
			t.Fatalf("reloaded guards differ:\n%v\n%v", g2.list(), g.list())
		}
	})

	t.Run("stable while relays come and go", func(t *testing.T) {
		more := slices.Clone(relays)
		for i := range 50 {
			more = append(more, fabricate(t, now, FlagRelay|FlagGuard, nil, fmt.Sprintf("/ip4/172.%d.0.1/tcp/1", i)))
			got, err := g.refresh(more[i%5:], now.Add(time.Duration(i)*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, order) {
				t.Fatal("guard set changed without a guard failing or expiring")
			}
		}
	})

	t.Run("replaced after failures", func(t *testing.T) {
		first := order[0]
		for i := range 2 {
			if ok, err := g.markFailure(first, now); !ok || err != nil {
				t.Fatalf("failure %d: %v %v", i, ok, err)
			}
		}
		// A relay that failed is marked down, so it is not in the usable
		// relays the set is refilled from.
		up := slices.DeleteFunc(slices.Clone(relays), func(d *Descriptor) bool { return d.PeerID == first })
		got, err := g.refresh(up, now)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got, first) || !slices.Equal(got[:2], order[1:]) || len(got) != 3 {
			t.Fatalf("after failures %v, was %v", got, order)
		}
		g2, _ := loadGuardSet(path, testGuardConfig(), sel)
		if !slices.Equal(guardIDs(g2.list()), got) {
			t.Fatal("replacement not saved")
		}
		order = got
	})

	t.Run("kept when every guard fails", func(t *testing.T) {
		for _, id := range order {
			for range 3 {
				g.markFailure(id, now)
			}
		}
		if got, _ := g.refresh(relays, now); !slices.Equal(got, order) {
			t.Fatal("guards replaced while all of them fail (network down)")
		}
		for _, id := range order {
			g.markSuccess(id)
		}
	})

	t.Run("success resets failures", func(t *testing.T) {
		g.markFailure(order[0], now)
		if err := g.markSuccess(order[0]); err != nil {
			t.Fatal(err)
		}
		g.markFailure(order[0], now)
		got, _ := g.refresh(relays, now)
		if got[0] != order[0] {
			t.Fatal("non-consecutive failures replaced a guard")
		}
	})

	t.Run("replaced when absent", func(t *testing.T) {
		present := func(id peer.ID) bool { return id != order[1] }
		g.observe(present, now)
		g.observe(present, now.Add(2*time.Hour))
		got, _ := g.refresh(relays, now.Add(2*time.Hour))
		if !slices.Equal(got, order) {
			t.Fatal("guard dropped before its absence limit")
		}
		g.observe(present, now.Add(3*time.Hour+time.Second))
		// Absent from the directory: not among the relays to sample from.
		up := slices.DeleteFunc(slices.Clone(relays), func(d *Descriptor) bool { return !present(d.PeerID) })
		got, _ = g.refresh(up, now.Add(3*time.Hour+time.Second))
		if slices.Contains(got, order[1]) || got[0] != order[0] {
			t.Fatalf("absent guard kept: %v", got)
		}
		order = got
	})

	t.Run("absence is not carried across a restart", func(t *testing.T) {
		g.observe(func(id peer.ID) bool { return id != order[0] }, now)
		g2, _ := loadGuardSet(path, testGuardConfig(), sel)
		got, _ := g2.refresh(relays, now.Add(10*time.Hour))
		if got[0] != order[0] {
			t.Fatal("a guard absent before the restart was dropped after it")
		}
	})

	t.Run("lifetime ends", func(t *testing.T) {
		later := now.Add(DefaultGuardLifetimeMax + 24*time.Hour)
		if got, _ := g.refresh(relays, later); len(got) != 3 {
			t.Fatalf("%d guards", len(got))
		}
		for _, gi := range g.list() {
			if !gi.Added.Equal(later) {
				t.Fatal("guard kept past its lifetime")
			}
		}
	})
}

func TestGuardFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":      "{",
		"wrong version": `{"version": 9, "guards": []}`,
		"bad peer":      `{"version": 1, "guards": [{"id": ""}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := loadGuardSet(path, testGuardConfig(), &Selector{}); !errors.Is(err, ErrGuardFile) {
				t.Fatalf("got %v", err)
			}
		})
	}
	g, err := loadGuardSet(filepath.Join(dir, "absent"), testGuardConfig(), &Selector{})
	if err != nil || len(g.list()) != 0 {
		t.Fatalf("missing file: %v", err)
	}
}
