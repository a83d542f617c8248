package discovery

import (
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
)

// maxServicePathTries bounds the paths drawn for one service circuit.
const maxServicePathTries = 8

// ServicePath chooses a path of DefaultHops relays for a circuit of
// Matryoshka services (package service), which ends inside the network
// and needs no exit: to a given relay (an intro point or a rendezvous
// relay someone else named), or, with to "", to one of the directory's
// choosing, preferably none of avoid (a client's rendezvous relay apart
// from the intro points, a service's intro points apart) but one of them
// when the directory has no other.
func (d *Discovery) ServicePath(to peer.ID, avoid []peer.ID) ([]*Descriptor, error) {
	return servicePath(d, to, avoid)
}

// pathSource is what servicePath needs of a Discovery.
type pathSource interface {
	SelectPath(PathRequest) ([]*Descriptor, error)
	Descriptor(peer.ID) (*Descriptor, bool)
}

func servicePath(src pathSource, to peer.ID, avoid []peer.ID) ([]*Descriptor, error) {
	if to == "" {
		var path []*Descriptor
		for range maxServicePathTries {
			var err error
			path, err = src.SelectPath(PathRequest{Hops: DefaultHops, AvoidExits: avoid, Internal: true})
			if err != nil {
				return nil, fmt.Errorf("select path: %w", err)
			}
			if !slices.Contains(avoid, path[len(path)-1].PeerID) {
				break
			}
		}
		return path, nil
	}
	last, ok := src.Descriptor(to)
	if !ok {
		return nil, fmt.Errorf("relay %s: %w", to.ShortString(), circuit.ErrNotRelay)
	}
	// The head is two hops of a fresh path that are not last. When last
	// is the entry guard, which a path always begins with, the head is
	// the path's next two hops: reaching one's own guard as an intro
	// point or rendezvous relay would otherwise be impossible on a small
	// network.
	path, err := src.SelectPath(PathRequest{Hops: DefaultHops + 1, Internal: true})
	if err != nil { // a network of three relays: last may be one of them
		path, err = src.SelectPath(PathRequest{Hops: DefaultHops, Internal: true})
	}
	if err != nil {
		return nil, fmt.Errorf("select path: %w", err)
	}
	var head []*Descriptor
	for _, d := range path {
		if d.PeerID != last.PeerID && len(head) < DefaultHops-1 {
			head = append(head, d)
		}
	}
	if len(head) < DefaultHops-1 {
		return nil, fmt.Errorf("no path avoiding relay %s: %w", last.PeerID.ShortString(), ErrNoMiddle)
	}
	return append(head, last), nil
}
