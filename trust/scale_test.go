package trust

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/tis"
)

// scaleRecords is a network of n identities, each vouching for k random
// others, with 10 seeds.
func scaleRecords(n, k int) (Records, []tis.ID) {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	vs := make([]Vouch, 0, n*k)
	r := Records{Vouches: make([]*Vouch, 0, n*k)}
	for i := range n {
		for range k {
			j := rng.IntN(n)
			if j == i {
				continue
			}
			vs = append(vs, Vouch{Voucher: testID(i), Vouchee: testID(j), Weight: uint8(1 + rng.IntN(MaxWeight)),
				IssuedAt: t0.Add(-time.Duration(rng.IntN(1000)) * time.Second), Expires: t0.Add(365 * 24 * time.Hour)})
			r.Vouches = append(r.Vouches, &vs[len(vs)-1])
		}
	}
	seeds := make([]tis.ID, 10)
	for i := range seeds {
		seeds[i] = testID(i * n / 10)
	}
	return r, seeds
}

// BenchmarkComputeScale is the figure: the TCI of 100k and 1M
// identities with 5 vouches each (the 1M case not under -short), in
// seconds per Compute.
func BenchmarkComputeScale(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("identities=%d", n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("-short")
			}
			r, seeds := scaleRecords(n, 5)
			b.ReportAllocs()
			cpu0 := testutil.CPUTime()
			b.ResetTimer()
			for b.Loop() {
				Compute(r, Options{Now: t0, Seeds: seeds})
			}
			// CPU time as well as wall time: on a shared machine the wall
			// time says more about the neighbours.
			b.ReportMetric((testutil.CPUTime()-cpu0).Seconds()/float64(b.N), "cpu-s/compute")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/compute")
			b.ReportMetric(0, "ns/op")
		})
	}
}
