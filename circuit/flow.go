package circuit

import (
	"fmt"
	"sync"
	"time"
)

// vegas is a circuit's congestion window on the sending side, after Tor's
// proposal 324 (TCP Vegas): see "Flow control" in doc.go. Its methods are
// called with the edge's lock held.
type vegas struct {
	cwnd      int // cells the sender may have in flight
	inflight  int // DATA cells sent and not yet credited
	slowStart bool
	acked     int // cells credited in the current round (one window)

	sent   int         // DATA cells sent, modulo sendmeInc
	stamps []time.Time // send time of each sendmeInc-th cell awaiting its SENDME

	minRTT   time.Duration // smallest round trip seen
	roundMin time.Duration // smallest in the current round
}

func newVegas() vegas {
	return vegas{cwnd: cwndInit, slowStart: true}
}

// room is how many cells may go now.
func (v *vegas) room() int { return max(0, v.cwnd-v.inflight) }

// onSend counts n DATA cells sent at now.
func (v *vegas) onSend(n int, now time.Time) {
	v.inflight += n
	for v.sent += n; v.sent >= circuitIncr; v.sent -= circuitIncr {
		v.stamps = append(v.stamps, now)
	}
}

// onSendme credits circuitIncr cells and adjusts the window from the round
// trip of the cell that triggered the SENDME. Credit for cells that were not
// sent is an error.
func (v *vegas) onSendme(now time.Time) error {
	if v.inflight < circuitIncr || len(v.stamps) == 0 {
		return fmt.Errorf("circuit SENDME for %d cells in flight: %w", v.inflight, ErrMalformed)
	}
	v.inflight -= circuitIncr
	rtt := now.Sub(v.stamps[0])
	v.stamps[0] = time.Time{}
	v.stamps = v.stamps[1:]
	if len(v.stamps) == 0 {
		v.stamps = nil
	}
	rtt = max(rtt, time.Microsecond)
	if v.minRTT == 0 || rtt < v.minRTT {
		v.minRTT = rtt
	}
	if v.roundMin == 0 || rtt < v.roundMin {
		v.roundMin = rtt
	}
	if v.slowStart && v.inflight+circuitIncr >= v.cwnd/2 { // only while the window is used
		v.cwnd += circuitIncr // doubles each round trip
	}
	v.acked += circuitIncr
	if v.acked < v.cwnd {
		v.cwnd = min(v.cwnd, cwndMax)
		return nil
	}
	// Once per round trip (a window credited): the cells queued along the
	// path are the window times the share of the round trip spent waiting
	// rather than travelling. The round's smallest sample stands for it:
	// scheduling jitter only ever adds to a sample, a standing queue raises
	// every one. The thresholds scale with the window.
	queue := int(int64(v.cwnd) * int64(v.roundMin-v.minRTT) / int64(v.roundMin))
	used := v.inflight+circuitIncr >= v.cwnd/2
	v.acked, v.roundMin = 0, 0
	alpha := max(vegasAlpha, v.cwnd/16)
	beta := max(vegasBeta, v.cwnd/8)
	gamma := max(vegasGamma, v.cwnd/8)
	delta := max(vegasDelta, v.cwnd/2)
	step := max(circuitIncr, v.cwnd/16)
	switch {
	case v.slowStart && queue > gamma:
		v.slowStart = false
		v.cwnd = max(v.cwnd-queue, cwndMin)
	case v.slowStart:
	case queue > delta:
		v.cwnd -= queue
	case queue > beta:
		v.cwnd -= step
	case queue < alpha && used:
		v.cwnd += step
	}
	v.cwnd = min(max(v.cwnd, cwndMin), cwndMax)
	return nil
}

// budget is a count of cells that receive windows may reserve: one per
// circuit (its streams' windows together), one per relay (every exit
// stream's). A nil budget is unlimited.
type budget struct {
	mu    sync.Mutex
	used  int
	limit int
}

func newBudget(limit int) *budget { return &budget{limit: limit} }

func (b *budget) take(n int) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (b *budget) inUse() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// takeBoth reserves n cells from a and b, or from neither.
func takeBoth(a, b *budget, n int) bool {
	if !a.take(n) {
		return false
	}
	if !b.take(n) {
		a.give(n)
		return false
	}
	return true
}
