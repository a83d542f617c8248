package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/sleep"
)

// A client's relay directory is kept by a Keeper besides discovery's own
// refresh loop (DefaultRefreshInterval): quickly while it cannot make a
// path, then less and less often; circuit builds wait on it (WaitPath) and
// ask it to look again (Poke) when a build finds no relays.

// ErrNoPath: no circuit path can be chosen from the relays known (yet).
var ErrNoPath = errors.New("no circuit path: not enough relays known")

// Timings of a Keeper. It refreshes every KeeperMin (doubling up to
// KeeperBusyMax) while no path can be made, then doubling up to KeeperMax
// once one can; one refresh gets KeeperRefreshTimeout; WaitPath looks
// again every WaitPathPoll.
const (
	KeeperMin            = time.Second
	KeeperBusyMax        = 15 * time.Second
	KeeperMax            = 5 * time.Minute
	KeeperRefreshTimeout = 30 * time.Second
	WaitPathPoll         = 200 * time.Millisecond
)

// Directory is what a Keeper refreshes and reads (*Discovery).
type Directory interface {
	Refresh(ctx context.Context) (RefreshStats, error)
	Relays() []*Descriptor
}

var _ Directory = (*Discovery)(nil)

// Keeper keeps d's directory fresh enough for paths of Hops hops chosen
// by Selector (whose guards it leaves alone: it asks a Selector without
// guards whether a path can be made).
type Keeper struct {
	d        Directory
	sel      Selector
	hops     func() int
	possible func()
	log      logrus.FieldLogger
	poke     chan struct{}
	once     sync.Once
}

// NewKeeper keeps d's directory for paths of hops() hops chosen by sel;
// possible is called once, when a path can first be made (a pool starts
// building its circuits then, so that its backoff does not grow while the
// network is still being found). A nil possible keeps the directory of a
// node that makes no paths (a relay-only node, which resolves its EXTENDs'
// next hops from it): refreshes from KeeperMin doubling up to KeeperMax.
// Run runs it.
func NewKeeper(d Directory, sel Selector, hops func() int, possible func(), log logrus.FieldLogger) *Keeper {
	return &Keeper{d: d, sel: sel, hops: hops, possible: possible, log: log, poke: make(chan struct{}, 1)}
}

// Possible reports whether the directory holds relays for a path of req,
// with the error of the Selector if not.
func (k *Keeper) Possible(req PathRequest) error {
	_, err := k.sel.Select(k.d.Relays(), req, nil)
	return err
}

// IsSelectError reports whether err is a path selection's (too few
// relays of a role), which more relays in the directory may cure.
func IsSelectError(err error) bool {
	return errors.Is(err, ErrNoExit) || errors.Is(err, ErrNoGuard) || errors.Is(err, ErrNoMiddle)
}

// Poke asks the keeper to refresh soon (at most every KeeperMin).
func (k *Keeper) Poke() {
	select {
	case k.poke <- struct{}{}:
	default:
	}
}

// WaitPath waits until a path of req can be chosen, poking the keeper
// meanwhile; it fails with ErrNoPath (and the Selector's error) when ctx
// ends first.
func (k *Keeper) WaitPath(ctx context.Context, req PathRequest) error {
	err := k.Possible(req)
	if err == nil {
		return nil
	}
	k.Poke()
	for {
		if !sleep.For(ctx, WaitPathPoll) {
			return fmt.Errorf("%w: %w", ErrNoPath, err)
		}
		if err = k.Possible(req); err == nil {
			return nil
		}
	}
}

// Run refreshes the directory until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	interval := KeeperMin
	possible := false
	for {
		last := time.Now()
		rctx, cancel := context.WithTimeout(ctx, KeeperRefreshTimeout)
		st, err := k.d.Refresh(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		log := k.log.WithField("relays", st.Relays)
		if err != nil {
			log.WithError(err).Debug("relay refresh incomplete")
		}
		if k.possible == nil {
			interval = min(2*interval, KeeperMax)
		} else if perr := k.Possible(PathRequest{Hops: k.hops()}); perr != nil {
			if possible {
				// The directory shrank below a path: look again at once,
				// then back off as at the start.
				possible, interval = false, KeeperMin/2
			}
			if interval >= KeeperBusyMax {
				log.WithError(perr).Warn("not enough relays known for a circuit yet")
			} else {
				log.WithError(perr).Debug("not enough relays known for a circuit yet")
			}
			interval = min(2*interval, KeeperBusyMax)
		} else {
			possible = true
			k.once.Do(func() {
				log.Info("relays found")
				k.possible()
			})
			interval = min(2*interval, KeeperMax)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-k.poke:
			t.Stop()
			// A burst of failing builds refreshes at most every KeeperMin.
			if !sleep.For(ctx, time.Until(last.Add(KeeperMin))) {
				return
			}
		}
	}
}
