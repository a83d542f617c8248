package web

import (
	"sync"
	"time"
)

// Limits of what the status page remembers, in memory only.
const (
	// throughputSamples is one sample per second over ThroughputWindow.
	throughputSamples = int(ThroughputWindow / time.Second)
	// maxRecentErrors bounds the recent errors kept.
	maxRecentErrors = 50
)

// Activity is what a node remembers for its status page: throughput per
// second over ThroughputWindow and recent errors. Destinations of errors
// are kept in memory, never logged or written, and shown only on request
// (Recent). Its methods are safe for concurrent use.
type Activity struct {
	mu      sync.Mutex
	ring    []Sample // oldest first once full
	next    int
	full    bool
	lastUp  uint64
	lastDn  uint64
	started bool
	// Cumulative client payload: closed circuits' last counts plus live.
	seen       map[any][2]uint64
	closedUp   uint64
	closedDown uint64
	totalUp    uint64
	totalDown  uint64
	errs       []ErrorEntry // newest last
}

// NewActivity returns an empty Activity.
func NewActivity() *Activity {
	return &Activity{ring: make([]Sample, throughputSamples), seen: map[any][2]uint64{}}
}

// SampleCircuits adds a sample of a client's payload: live gives each
// open circuit's bytes up and down so far, by any comparable key (the
// circuit); a circuit gone since the last sample keeps counting in the
// totals with its last counts.
func (a *Activity) SampleCircuits(now time.Time, live map[any][2]uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var up, down uint64
	for _, b := range live {
		up += b[0]
		down += b[1]
	}
	for c, b := range a.seen {
		if _, ok := live[c]; !ok {
			a.closedUp += b[0]
			a.closedDown += b[1]
		}
	}
	a.seen = live
	a.addLocked(now, a.closedUp+up, a.closedDown+down)
}

// SampleRelay adds a sample of a relay's forwarded cell bytes so far.
func (a *Activity) SampleRelay(now time.Time, bytes uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addLocked(now, 0, bytes)
}

func (a *Activity) addLocked(now time.Time, up, down uint64) {
	a.totalUp, a.totalDown = up, down
	if !a.started {
		a.started = true
		a.lastUp, a.lastDn = up, down
		return
	}
	s := Sample{Time: now.Unix()}
	if up >= a.lastUp {
		s.Up = up - a.lastUp
	}
	if down >= a.lastDn {
		s.Down = down - a.lastDn
	}
	a.lastUp, a.lastDn = up, down
	a.ring[a.next] = s
	a.next = (a.next + 1) % len(a.ring)
	if a.next == 0 {
		a.full = true
	}
}

// Samples returns the samples, oldest first.
func (a *Activity) Samples() []Sample {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Sample, 0, len(a.ring))
	if a.full {
		out = append(out, a.ring[a.next:]...)
	}
	return append(out, a.ring[:a.next]...)
}

// Totals are the client's payload bytes since start.
func (a *Activity) Totals() (up, down uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.totalUp, a.totalDown
}

// Record remembers an error (the newest maxRecentErrors); dest may be "".
func (a *Activity) Record(kind, msg, dest string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) == maxRecentErrors {
		a.errs = append(a.errs[:0], a.errs[1:]...)
	}
	a.errs = append(a.errs, ErrorEntry{Time: time.Now().UTC(), Kind: kind, Message: msg, Destination: dest})
}

// Recent returns the errors, newest first, with destinations only if
// asked.
func (a *Activity) Recent(destinations bool) []ErrorEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]ErrorEntry, 0, len(a.errs))
	for i := len(a.errs) - 1; i >= 0; i-- {
		e := a.errs[i]
		if !destinations {
			e.Destination = ""
		}
		out = append(out, e)
	}
	return out
}
