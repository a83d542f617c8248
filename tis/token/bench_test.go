package token

import (
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
)

// BenchmarkIssue is the TIS's cost per token: checking a request of
// MaxBatch blinded messages (certificate, node signature, count) and
// signing them.
func BenchmarkIssue(b *testing.B) {
	f := newFixture(b, IssuerOptions{TokensPerPeriod: 1 << 30})
	alice := f.tis.Enroll(b, "alice")
	c := f.client(alice)
	keys, err := c.Keys(ctx(b))
	if err != nil {
		b.Fatal(err)
	}
	q := &IssueRequest{Root: keys[0].Issuer, NodeCert: alice.Enrollment.NodeCert, Key: keys[0].ID(), Time: f.clock.Now()}
	toks, _ := issue(b, c, MaxBatch)
	for _, enc := range toks {
		tok, _ := DecodeToken(enc)
		q.Blinded = append(q.Blinded, tok.Signature) // any value below the modulus
	}
	msg, _ := q.signed()
	q.Signature, _ = alice.NodeKey.Sign(msg)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testutil.CPUTime()
	for b.Loop() {
		if _, err := f.issuer.Issue(ctx(b), q); err != nil {
			b.Fatal(err)
		}
	}
	perToken(b, testutil.CPUTime()-cpu, b.N*MaxBatch)
}

// BenchmarkClientIssue is a whole issuance of MaxBatch tokens over HTTP
// on loopback, as a wallet refill does it: fetch keys, blind, request,
// sign, unblind and check, per token.
func BenchmarkClientIssue(b *testing.B) {
	f := newFixture(b, IssuerOptions{TokensPerPeriod: 1 << 30})
	c := f.client(f.tis.Enroll(b, "alice"))
	b.ReportAllocs()
	cpu := testutil.CPUTime()
	for b.Loop() {
		if _, err := c.Issue(ctx(b), testGuard, MaxBatch); err != nil {
			b.Fatal(err)
		}
	}
	perToken(b, testutil.CPUTime()-cpu, b.N*MaxBatch)
}

// BenchmarkRedeem is a guard's cost per token: decode, RSA verification
// and the spent-token cache.
func BenchmarkRedeem(b *testing.B) {
	f := newFixture(b, IssuerOptions{TokensPerPeriod: 1 << 30})
	toks, _ := issue(b, f.client(f.tis.Enroll(b, "alice")), MaxBatch)
	keys, err := f.issuer.Keys(ctx(b), f.clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	now := f.clock.Now()
	var r *Redeemer
	b.ReportAllocs()
	cpu := testutil.CPUTime()
	i := 0
	for b.Loop() {
		if i%len(toks) == 0 {
			// A fresh cache each round, so that every token is new to it.
			b.StopTimer()
			r = NewRedeemer(f.tis.Root, testGuard, RedeemerOptions{})
			if err := r.AddKeys(keys, now); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if err := r.Redeem(toks[i%len(toks)], now); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perToken(b, testutil.CPUTime()-cpu, b.N) // the CPU figure includes the AddKeys rounds
}

// perToken reports wall and CPU time per token instead of per operation.
func perToken(b *testing.B, cpu time.Duration, tokens int) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(tokens), "µs/token")
	b.ReportMetric(float64(cpu.Microseconds())/float64(tokens), "cpu-µs/token")
	b.ReportMetric(0, "ns/op")
}
