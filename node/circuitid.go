package node

import (
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/circuit"
)

// Circuit identities (issue 13): a client builds its circuits from
// circuit.Identities, a libp2p host with a fresh identity
// (circuit.NewFreshDialHost), never identity.key, made anew every
// Options.CircuitIdentityPeriod and at each NewIdentity. Here they are
// wired: the pools and the record circuits retire with the old identity.

// newCircuitIDs makes a client's circuit identities; period 0 is
// circuit.DefaultIdentityOptions' day.
func newCircuitIDs(listen []string, ro circuit.RelayOptions, period time.Duration) (*circuit.Identities, error) {
	return circuit.NewIdentities(func() (host.Host, error) { return circuit.NewFreshDialHost(listen, ro) },
		circuit.IdentityOptions{Period: period})
}

// rotateCircuitIdentity puts a new circuit identity in use: new circuits
// are built from it, the record circuits are retired, and the caller
// retires the pools' circuits, which then close as their streams end.
func (n *Node) rotateCircuitIdentity() error {
	if n.cids == nil {
		return nil
	}
	cc, err := n.cids.Rotate()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.cc = cc
	recs, svcRecs := n.records, n.svcRecs
	n.mu.Unlock()
	if recs != nil {
		recs.Retire()
	}
	if svcRecs != nil {
		svcRecs.Retire()
	}
	return nil
}

// circuitIdentityExpired is the identities' expired: the period is over.
func (n *Node) circuitIdentityExpired() {
	if err := n.rotateCircuitIdentity(); err != nil {
		if !errors.Is(err, circuit.ErrIdentitiesClosed) {
			n.log.WithError(err).Warn("rotate the circuit identity")
		}
		return
	}
	n.mu.Lock()
	p, p6 := n.pool, n.pool6
	n.mu.Unlock()
	if p != nil {
		p.NewIdentity()
		p6.NewIdentity()
	}
	n.log.Debug("new circuit identity for the new period")
}
