package trust

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// viewNet enrolls n identities with a real TIS and offers to a new view
// each one's bundle of k vouches for the next identities.
func viewNet(t testing.TB, n, k int) (*View, *testTIS, []identity) {
	tt := newTestTIS(t)
	ids := make([]identity, n)
	for i := range ids {
		ids[i] = tt.enroll(t, fmt.Sprintf("p%d", i))
	}
	v := NewView(ViewOptions{Root: tt.root})
	now := time.Now()
	for i, id := range ids {
		var vs []*Vouch
		for j := 1; j <= k && j < n; j++ {
			vs = append(vs, nowVouch(ids[(i+j)%n].cert.ID, uint8(10*j)))
		}
		if _, err := v.Offer(signedBundle(t, id, now, vs, nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	seeds, err := tis.NewSeedList([]tis.ID{ids[0].cert.ID}, now.Add(-time.Minute), tt.rootPriv)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := seeds.Encode()
	if _, err := v.OfferSeeds(enc); err != nil {
		t.Fatal(err)
	}
	return v, tt, ids
}

// TestRecomputeVerifiesOnce: a second recompute verifies no bundle again
// and gives the same scores; a new bundle is verified once.
func TestRecomputeVerifiesOnce(t *testing.T) {
	const n = 12
	v, _, ids := viewNet(t, n, 3)
	first := v.Recompute()
	if got := v.verifications.Load(); got != n {
		t.Fatalf("%d verifications for %d bundles", got, n)
	}
	second := v.Recompute()
	if got := v.verifications.Load(); got != n {
		t.Fatalf("%d verifications after a second recompute, want %d", got, n)
	}
	for _, id := range ids {
		if first.Trust(id.cert.ID) != second.Trust(id.cert.ID) {
			t.Fatal("scores changed without a change of records")
		}
	}
	if first.Score(ids[1].cert.ID) == 0 {
		t.Fatal("no trust flowed from the seed")
	}
	// A newer bundle of one identity, with no vouches: verified once, and
	// its vouchees lose what it gave them.
	if _, err := v.Offer(signedBundle(t, ids[0], time.Now().Add(time.Second), nil, nil, nil)); err != nil {
		t.Fatal(err)
	}
	third := v.Recompute()
	if got := v.verifications.Load(); got != n+1 {
		t.Fatalf("%d verifications after one new bundle, want %d", got, n+1)
	}
	if third.Score(ids[1].cert.ID) >= first.Score(ids[1].cert.ID) {
		t.Fatal("the seed's withdrawn vouches still count")
	}
}

// BenchmarkViewRecompute recomputes a view of 2,000 enrolled identities
// (5 vouches each) while a reader calls Scores in a loop, and reports the
// recompute's time (first: every signature verified; again: from the
// cache) and the longest a Scores call waited.
func BenchmarkViewRecompute(b *testing.B) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	v, _, _ := viewNet(b, n, 5)
	var longest time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t := time.Now()
			v.Scores()
			longest = max(longest, time.Since(t))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	t := time.Now()
	v.Recompute()
	firstTime := time.Since(t)
	b.ResetTimer()
	for b.Loop() {
		v.Recompute()
	}
	again := b.Elapsed() / time.Duration(b.N)
	close(stop)
	wg.Wait()
	b.ReportMetric(firstTime.Seconds()*1000, "ms/first-recompute")
	b.ReportMetric(again.Seconds()*1000, "ms/recompute")
	b.ReportMetric(longest.Seconds()*1000, "ms/longest-Scores-wait")
	b.ReportMetric(float64(n), "bundles")
	b.ReportMetric(0, "ns/op")
}
