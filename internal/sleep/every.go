package sleep

import (
	"context"
	"time"
)

// Every calls f at each tick of interval and at each receive from wake
// (nil: ticks only), until ctx ends; f runs on the caller's goroutine,
// never after ctx ended, and Every returns once it ended.
func Every(ctx context.Context, interval time.Duration, wake <-chan any, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		f()
	}
}
