package circuit

import (
	"context"
	"time"

	"github.com/pikcio/pikcio/internal/sleep"
)

// OnionKeyCheck is how often a relay's KeepOnionKey looks at its onion
// key's age.
const OnionKeyCheck = time.Hour

// KeepOnionKey rotates the relay's onion key once less than half of its
// lifetime (RelayOptions.OnionKeyLifetime) is left, looking every
// interval until ctx ends; rotated runs after each rotation (the node
// republishes its descriptor with the new key). A rotation that fails is
// logged and tried again at the next look.
func (r *Relay) KeepOnionKey(ctx context.Context, interval time.Duration, rotated func()) {
	half := r.opts.OnionKeyLifetime / 2
	sleep.Every(ctx, interval, nil, func() {
		if time.Until(r.OnionKey().Expires) > half {
			return
		}
		if err := r.RotateOnionKey(); err != nil {
			r.log.WithError(err).Error("rotate onion key")
			return
		}
		r.log.Info("onion key rotated")
		rotated()
	})
}
