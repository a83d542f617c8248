package circuit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
)

// TestKeepOnionKey: a key with more than half of its lifetime left stays;
// one past half is rotated, and rotated runs; the loop ends with its
// context.
func TestKeepOnionKey(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		rotate   bool
	}{
		// A fresh key has all of its lifetime left.
		{"fresh", time.Hour, false},
		// A lifetime shorter than the test's poll is past half at once.
		{"old", 20 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultRelayOptions()
			o.OnionKeyLifetime = tt.lifetime
			r, err := NewRelay(newHost(t), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			first := r.OnionKey()
			var mu sync.Mutex
			rotations := 0
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.KeepOnionKey(ctx, 5*time.Millisecond, func() { mu.Lock(); rotations++; mu.Unlock() })
			}()
			if tt.rotate {
				testutil.WaitFor(t, 10*time.Second, "a rotation", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return rotations > 0
				})
				if r.OnionKey().Public == first.Public {
					t.Fatal("rotated called, key unchanged")
				}
			} else {
				time.Sleep(50 * time.Millisecond) // ten looks
			}
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if !tt.rotate && (rotations != 0 || r.OnionKey().Public != first.Public) {
				t.Fatalf("%d rotations of a fresh key", rotations)
			}
		})
	}
}
