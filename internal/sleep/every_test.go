package sleep

import (
	"context"
	"testing"
	"time"
)

// TestEvery: f runs at ticks and at wakes, on the caller's goroutine, and
// Every returns when its context ends.
func TestEvery(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		wake     bool
	}{
		{"ticks", time.Millisecond, false},
		{"wakes", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var wake chan any
			if tt.wake {
				wake = make(chan any)
				go func() {
					for range 3 {
						select {
						case wake <- struct{}{}:
						case <-ctx.Done():
							return
						}
					}
				}()
			}
			calls := 0
			Every(ctx, tt.interval, wake, func() {
				calls++ // no lock: f runs on this goroutine
				if calls == 3 {
					cancel()
				}
			})
			if calls != 3 {
				t.Fatalf("%d calls, want 3 before the cancel", calls)
			}
		})
	}
}
