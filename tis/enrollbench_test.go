package tis

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/internal/tisfill"
)

// prefill adds n made-up enrolled people to the store in bulk, inside the
// database (a person, two keys and two serials each), as if n people had
// enrolled before the measured ones.
func prefill(tb testing.TB, s *Server, n int) {
	tb.Helper()
	st := s.store.(*sqlStore)
	queries := tisfill.Queries(st.postgres, 1, n, time.Now().Add(DefaultCertLifetime).Unix())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.store.Update(ctx, func(tx Tx) error {
		for _, q := range queries {
			if _, err := tx.(*sqlTx).tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	if st.postgres {
		st.db.ExecContext(ctx, "ANALYZE")
	}
}

// BenchmarkEnroll enrolls people through the real HTTP path (the request
// that mails a code, then the one with the code) into a TIS that holds N
// people already, and reports enrollments per second and the median time
// of one. On SQLite one server; on PostgreSQL two servers sharing the
// database, the requests alternating between them. N is 10k and 100k, and
// 1M unless -short; PIKCIO_BENCH_N=10000,1000000 picks others.
func BenchmarkEnroll(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if testing.Short() {
		sizes = []int{1_000, 10_000}
	}
	if env := os.Getenv("PIKCIO_BENCH_N"); env != "" {
		sizes = nil
		for _, f := range splitComma(env) {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("PIKCIO_BENCH_N: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, backend := range []string{"sqlite", "postgres-2-servers"} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/N=%d", backend, n), func(b *testing.B) {
				// All from one address to one domain: the limits are not
				// what is measured.
				open := ServerOptions{EnrollRate: 1e6, EnrollBurst: 1e6, AddrRate: 1e6, AddrBurst: 1e6, DomainRate: 1e6, DomainBurst: 1e6}
				var servers []*testTIS
				if backend == "sqlite" {
					servers = []*testTIS{newTestTIS(b, open)}
				} else {
					x, y := twoServersTB(b, startPostgres(b), open)
					servers = []*testTIS{x, y}
				}
				prefill(b, servers[0].srv, n)
				const perRound, workers = 1000, 16
				var lat []time.Duration
				var mu sync.Mutex
				b.ResetTimer()
				cpu0 := testutil.CPUTime()
				start := time.Now()
				total := 0
				for b.Loop() {
					b.StopTimer()
					nodes := make([]testNode, perRound)
					for i := range nodes {
						nodes[i] = newTestNodeB(b)
					}
					b.StartTimer()
					var wg sync.WaitGroup
					next := make(chan int)
					for range workers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := range next {
								tt := servers[i%len(servers)]
								c := tt.client()
								t0 := time.Now()
								if _, err := c.Enroll(context.Background(), nodes[i].key, nodes[i].mkey, "Bench", fmt.Sprintf("b%d-%d@example.org", total, i)); err != nil {
									b.Error(err)
								}
								d := time.Since(t0)
								mu.Lock()
								lat = append(lat, d)
								mu.Unlock()
							}
						}()
					}
					for i := range perRound {
						next <- i
					}
					close(next)
					wg.Wait()
					total += perRound
				}
				elapsed := time.Since(start)
				cpu := testutil.CPUTime() - cpu0
				slices.Sort(lat)
				b.ReportMetric(float64(total)/elapsed.Seconds(), "enrollments/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/enrollment-median")
				// The CPU time of this process (clients and servers; not
				// PostgreSQL's), which a loaded machine does not inflate.
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(total), "cpu-ms/enrollment")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

func splitComma(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
