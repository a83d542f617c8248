package discovery

import (
	"errors"
	"fmt"
	"strings"
	"time"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Namespace is the DHT record namespace of relay descriptors: a relay's
// descriptor is stored under "/pikcio-desc/<peer ID>".
const Namespace = "pikcio-desc"

// DescriptorKey returns the DHT key of id's descriptor.
func DescriptorKey(id peer.ID) string { return "/" + Namespace + "/" + id.String() }

func peerFromKey(key string) (peer.ID, error) {
	rest, ok := strings.CutPrefix(key, "/"+Namespace+"/")
	if !ok {
		return "", fmt.Errorf("key not in /%s: %w", Namespace, ErrKeyMismatch)
	}
	id, err := peer.Decode(rest)
	if err != nil {
		return "", fmt.Errorf("peer ID in key: %w", ErrKeyMismatch)
	}
	return id, nil
}

// validator is the DHT record validator of the descriptor namespace: every
// node that stores or receives a descriptor verifies it.
type validator struct {
	now     func() time.Time
	maxSkew time.Duration
}

var _ record.Validator = validator{}

func (v validator) verify(key string, value []byte) (*Descriptor, error) {
	id, err := peerFromKey(key)
	if err != nil {
		return nil, err
	}
	d, err := VerifyDescriptor(value, VerifyOptions{Now: v.now(), MaxSkew: v.maxSkew})
	if err != nil {
		return nil, err
	}
	if d.PeerID != id {
		return nil, fmt.Errorf("descriptor of %s under key of %s: %w", d.PeerID, id, ErrKeyMismatch)
	}
	return d, nil
}

// Validate implements record.Validator.
func (v validator) Validate(key string, value []byte) error {
	_, err := v.verify(key, value)
	return err
}

// Select implements record.Validator: the newest valid descriptor wins.
func (v validator) Select(key string, values [][]byte) (int, error) {
	best, bestIdx := (*Descriptor)(nil), -1
	for i, val := range values {
		d, err := v.verify(key, val)
		if err != nil {
			continue
		}
		if best == nil || newer(d, best) {
			best, bestIdx = d, i
		}
	}
	if bestIdx < 0 {
		return 0, errors.New("no valid descriptor to select")
	}
	return bestIdx, nil
}
