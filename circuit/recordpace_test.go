package circuit

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestRecordPacerSlack: in virtual time, a client that sends record
// requests as fast as newRecordPacer lets it is never answered busy by a
// relay at the default limits, even when its first requests were held up
// on the way (the relay's count starts late and then sees them bunched).
// With the relay's full burst at the client (the pacing before), a stall
// of 200 ms made the relay refuse requests (TestRecordPacing's flake
// under load).
func TestRecordPacerSlack(t *testing.T) {
	tests := []struct {
		name  string
		stall time.Duration // requests sent before it arrive at it
	}{
		{"none", 0},
		{"200ms", 200 * time.Millisecond},
		{"1s", time.Second},
		{"1.5s", 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t0 := time.Unix(1_700_000_000, 0)
			pacer := newRecordPacer()
			relay := rate.NewLimiter(rate.Limit(DefaultRecordRate), DefaultRecordBurst) // as relayCirc.record
			now := t0
			for i := range 5 * DefaultRecordBurst {
				r := pacer.ReserveN(now, 1)
				if !r.OK() {
					t.Fatal("pacer refused a reservation")
				}
				now = now.Add(r.DelayFrom(now))
				arrive := now
				if stallEnd := t0.Add(tt.stall); arrive.Before(stallEnd) {
					arrive = stallEnd
				}
				if !relay.AllowN(arrive, 1) {
					t.Fatalf("request %d, sent at +%v, arriving at +%v: the relay answers busy", i, now.Sub(t0), arrive.Sub(t0))
				}
			}
		})
	}
}
