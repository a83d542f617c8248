package trust

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// DescriptorExtension is the discovery descriptor extension that carries a
// relay's current RelayScore statement (tis.DescriptorExtension carries
// its node certificate).
const DescriptorExtension uint16 = 2

// DefaultRelayScoreLifetime is the lifetime of the statements TISScorer
// makes; relays fetch a new one at half of it.
const DefaultRelayScoreLifetime = 6 * time.Hour

// ErrNoScores reports a scorer whose view has not computed scores yet.
var ErrNoScores = errors.New("no trust scores computed yet")

// TISScorer makes the TIS's relay score statements from a View: the band
// of the operator's current score under the relay's node ID.
type TISScorer struct {
	View *View
	// Lifetime of a statement (default DefaultRelayScoreLifetime, at most
	// MaxRelayScoreLifetime).
	Lifetime time.Duration
}

var _ tis.RelayScorer = TISScorer{}

// RelayScore implements tis.RelayScorer.
func (s TISScorer) RelayScore(_ context.Context, node, matryoshka tis.ID, root ed25519.PrivateKey, now time.Time) ([]byte, error) {
	score, ok := s.View.Score(matryoshka)
	if !ok {
		return nil, ErrNoScores
	}
	life := s.Lifetime
	if life <= 0 {
		life = DefaultRelayScoreLifetime
	}
	life = min(life, MaxRelayScoreLifetime)
	issued := now.Truncate(time.Second)
	st := &RelayScore{Node: node, Band: BandOf(score), IssuedAt: issued, Expires: issued.Add(life.Truncate(time.Second))}
	if err := st.Sign(root); err != nil {
		return nil, fmt.Errorf("sign relay score: %w", err)
	}
	return st.Encode()
}

// Range returns the score range of the statement's band.
func (s *RelayScore) Range() (lo, hi int) { return BandRange(s.Band) }
