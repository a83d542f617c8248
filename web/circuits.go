package web

import "time"

// Building the client's circuits for Status from what the pool and the
// circuits tell.

// ShortID is the last eight characters of a peer ID's text: enough to
// tell the relays of a network apart on a status page.
func ShortID(peerID string) string {
	if len(peerID) <= 8 {
		return peerID
	}
	return peerID[len(peerID)-8:]
}

// HopRole names position i of an n-hop path: "guard", "middle" or
// "exit" (a one-hop circuit's only hop is its exit).
func HopRole(i, n int) string {
	switch {
	case i == n-1:
		return "exit"
	case i == 0:
		return "guard"
	default:
		return "middle"
	}
}

// PoolCircuit is one circuit of the client's pool as the node reads it.
type PoolCircuit struct {
	ID      uint64 // the pool's number
	Group   int    // isolation group; 0: prebuilt, not used yet
	Retired bool   // takes no new streams
	Created time.Time
	Hops    []string // peer IDs, first hop first
	// BytesUp and BytesDown are payload bytes; Streams are open now.
	BytesUp, BytesDown uint64
	Streams            int
	StreamsOpened      uint64
}

// Circuits is the status of cs at now, in their order. hop, if not nil,
// gives a hop's trust band and contact name by its peer ID.
func Circuits(now time.Time, cs []PoolCircuit, hop func(peerID string) (*Band, string)) []CircuitStatus {
	out := make([]CircuitStatus, 0, len(cs))
	for _, c := range cs {
		s := CircuitStatus{
			ID:            c.ID,
			Hops:          make([]HopStatus, len(c.Hops)),
			Age:           now.Sub(c.Created).Seconds(),
			BytesUp:       c.BytesUp,
			BytesDown:     c.BytesDown,
			Streams:       c.Streams,
			StreamsOpened: c.StreamsOpened,
			Group:         c.Group,
			State:         "in use",
		}
		switch {
		case c.Retired:
			s.State = "retired"
		case c.Group == 0:
			s.State = "clean"
		}
		for i, id := range c.Hops {
			hs := HopStatus{ID: ShortID(id), PeerID: id, Role: HopRole(i, len(c.Hops))}
			if hop != nil {
				hs.TCI, hs.Contact = hop(id)
			}
			s.Hops[i] = hs
		}
		out = append(out, s)
	}
	return out
}
