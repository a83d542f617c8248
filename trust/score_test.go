package trust

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// The worked example of doc.go.
func TestDocExample(t *testing.T) {
	S, A, B, C := testID(1), testID(2), testID(3), testID(4)
	r := Records{
		Vouches:      []*Vouch{vouch(S, A, 50), vouch(S, B, 50), vouch(A, B, 100), vouch(B, C, 10)},
		Attestations: []*Attestation{attest(A, "email-verified")},
	}
	s := Compute(r, Options{Now: t0, Seeds: []tis.ID{S}})
	for _, c := range []struct {
		id    tis.ID
		trust int64
		score int
	}{{S, 1_000_000, 100}, {A, 375_000, 38}, {B, 656_250, 66}, {C, 492_187, 49}} {
		if got := s.Trust(c.id); got != c.trust {
			t.Errorf("trust of %x = %d, want %d", c.id[31], got, c.trust)
		}
		if got := s.Score(c.id); got != c.score {
			t.Errorf("score of %x = %d, want %d", c.id[31], got, c.score)
		}
	}
	x := s.Explain(B)
	if !x.Known || x.NumVouchers != 2 || x.Vouchers[0].Voucher != S || x.Vouchers[0].Trust != 375_000 ||
		x.Vouchers[1].Voucher != A || x.Vouchers[1].Trust != 281_250 || x.FromVouches != 656_250 {
		t.Errorf("Explain(B) = %+v", x)
	}
	if x := s.Explain(A); !slices.Equal(x.Attestations, []string{"email-verified"}) || x.Base != 100_000 || x.Seed {
		t.Errorf("Explain(A) = %+v", x)
	}
	if x := s.Explain(testID(99)); x.Known || x.Score != 0 {
		t.Errorf("Explain(unknown) = %+v", x)
	}
}

// randomRecords builds a random graph over n identities.
func randomRecords(rng *rand.Rand, n, vouches int) (Records, []tis.ID) {
	var r Records
	for range vouches {
		a, b := rng.IntN(n), rng.IntN(n)
		if a == b {
			continue
		}
		v := vouch(testID(a), testID(b), uint8(1+rng.IntN(MaxWeight)))
		v.IssuedAt = t0.Add(-time.Duration(rng.IntN(1000)) * time.Second)
		r.Vouches = append(r.Vouches, v)
		if rng.IntN(10) == 0 {
			r.Withdrawals = append(r.Withdrawals, &Withdrawal{Voucher: v.Voucher, Vouchee: v.Vouchee,
				IssuedAt: t0.Add(-time.Duration(rng.IntN(1000)) * time.Second)})
		}
	}
	for i := range n / 20 {
		r.Attestations = append(r.Attestations, attest(testID(i*7%n), []string{"email-verified", "account-linked:a", "account-linked:b"}[i%3]))
	}
	return r, []tis.ID{testID(0), testID(1)}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r, seeds := randomRecords(rng, 300, 2000)
	want := Compute(r, Options{Now: t0, Seeds: seeds})
	for i := range 20 {
		rng.Shuffle(len(r.Vouches), func(i, j int) { r.Vouches[i], r.Vouches[j] = r.Vouches[j], r.Vouches[i] })
		rng.Shuffle(len(r.Withdrawals), func(i, j int) { r.Withdrawals[i], r.Withdrawals[j] = r.Withdrawals[j], r.Withdrawals[i] })
		rng.Shuffle(len(r.Attestations), func(i, j int) { r.Attestations[i], r.Attestations[j] = r.Attestations[j], r.Attestations[i] })
		s := slices.Clone(seeds)
		slices.Reverse(s)
		got := Compute(r, Options{Now: t0, Seeds: s})
		if !slices.Equal(got.ids, want.ids) || !slices.Equal(got.trust, want.trust) {
			t.Fatalf("shuffle %d: different scores", i)
		}
		for _, id := range want.ids[:10] {
			a, b := got.Explain(id), want.Explain(id)
			if a.Trust != b.Trust || !slices.Equal(a.Vouchers, b.Vouchers) {
				t.Fatalf("shuffle %d: different explanation of %s", i, id)
			}
		}
	}
}

func TestSeedAndAttestations(t *testing.T) {
	seed, attested, twice, plain := testID(1), testID(2), testID(3), testID(4)
	r := Records{
		Attestations: []*Attestation{attest(attested, "email-verified"), attest(twice, "email-verified"),
			attest(twice, "account-linked:github"), attest(twice, "email-verified")},
		Vouches: []*Vouch{vouch(plain, attested, 100)},
	}
	s := Compute(r, Options{Now: t0, Seeds: []tis.ID{seed}})
	if !(s.Score(seed) == 100 && s.Score(twice) == 20 && s.Score(attested) == 10 && s.Score(plain) == 0) {
		t.Fatalf("scores seed %d, two kinds %d, one kind %d, plain %d", s.Score(seed), s.Score(twice), s.Score(attested), s.Score(plain))
	}
	// Attestations are bounded: many kinds give at most the cap.
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		r.Attestations = append(r.Attestations, attest(plain, k))
	}
	if got := Compute(r, Options{Now: t0}).Score(plain); got != 30 {
		t.Fatalf("six attestation kinds: score %d, want the cap 30", got)
	}
}

func TestSybilCluster(t *testing.T) {
	seed, trusted, honest, attacker := testID(1), testID(2), testID(3), testID(4)
	r := Records{
		Vouches: []*Vouch{vouch(seed, trusted, 100), vouch(trusted, honest, 50),
			vouch(trusted, testID(5), 50)},
		// The attacker passed one cheap check.
		Attestations: []*Attestation{attest(attacker, "email-verified")},
	}
	const n = 50
	sybil := func(i int) tis.ID { return testID(1000 + i) }
	for i := range n {
		for j := range n {
			if i != j {
				r.Vouches = append(r.Vouches, vouch(sybil(i), sybil(j), MaxWeight))
			}
		}
		r.Vouches = append(r.Vouches, vouch(sybil(i), honest, MaxWeight)) // cannot hurt
	}
	isolated := Compute(r, Options{Now: t0, Seeds: []tis.ID{seed}})
	for i := range n {
		if got := isolated.Trust(sybil(i)); got != 0 {
			t.Fatalf("isolated Sybil %d has trust %d, want 0", i, got)
		}
	}
	// One attack edge: a barely trusted identity vouches for one Sybil and
	// nobody else. The Sybils cannot climb above the trust that enters.
	r.Vouches = append(r.Vouches, vouch(attacker, sybil(0), MaxWeight))
	s := Compute(r, Options{Now: t0, Seeds: []tis.ID{seed}})
	var total int64
	best := 0
	for i := range n {
		total += s.Trust(sybil(i))
		best = max(best, s.Score(sybil(i)))
	}
	t.Logf("attacker %d; Sybils best %d, total trust %d; honest %d", s.Score(attacker), best, total, s.Score(honest))
	if best > s.Score(attacker) || best > 10 {
		t.Errorf("best Sybil score %d, above the attacker's %d", best, s.Score(attacker))
	}
	// The trust a region holds is at most inflow*Keep/(Unit-Keep).
	if in := s.Trust(attacker) * DefaultKeep / Unit; total > in*Unit/(Unit-DefaultKeep) {
		t.Errorf("Sybil region holds %d, more than its bound from inflow %d", total, in)
	}
	if s.Score(honest) < 25 || s.Score(honest) <= best {
		t.Errorf("honest identity scores %d (Sybils up to %d)", s.Score(honest), best)
	}
}

func TestWithdrawalAndExpiry(t *testing.T) {
	seed, a := testID(1), testID(2)
	v := vouch(seed, a, 100)
	tests := []struct {
		name string
		r    Records
		now  time.Time
		want int
	}{
		{"vouch", Records{Vouches: []*Vouch{v}}, t0, 75},
		{"expired", Records{Vouches: []*Vouch{v}}, v.Expires, 0},
		{"not yet valid", Records{Vouches: []*Vouch{v}}, t0.Add(-time.Hour), 0},
		{"withdrawn later", Records{Vouches: []*Vouch{v}, Withdrawals: []*Withdrawal{{Voucher: seed, Vouchee: a, IssuedAt: t0.Add(time.Second)}}}, t0.Add(time.Hour), 0},
		{"withdrawn same second", Records{Vouches: []*Vouch{v}, Withdrawals: []*Withdrawal{{Voucher: seed, Vouchee: a, IssuedAt: t0}}}, t0, 0},
		{"vouch after withdrawal", Records{Vouches: []*Vouch{v}, Withdrawals: []*Withdrawal{{Voucher: seed, Vouchee: a, IssuedAt: t0.Add(-time.Second)}}}, t0, 75},
		{"withdrawal by someone else", Records{Vouches: []*Vouch{v}, Withdrawals: []*Withdrawal{{Voucher: testID(3), Vouchee: a, IssuedAt: t0.Add(time.Second)}}}, t0.Add(time.Hour), 75},
		{"expired attestation", Records{Attestations: []*Attestation{attest(a, "email-verified")}}, t0.Add(400 * 24 * time.Hour), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compute(tt.r, Options{Now: tt.now, Seeds: []tis.ID{seed}}).Score(a); got != tt.want {
				t.Fatalf("score %d, want %d", got, tt.want)
			}
		})
	}
	// The latest vouch of a pair counts: a re-issued lower weight replaces
	// the older one.
	seedB := testID(5)
	newer := vouch(seed, a, 10)
	newer.IssuedAt = t0.Add(time.Minute)
	r := Records{Vouches: []*Vouch{v, newer, vouch(seed, seedB, 10)}}
	if got := Compute(r, Options{Now: t0.Add(time.Hour), Seeds: []tis.ID{seed}}).Trust(a); got != 375_000 {
		t.Fatalf("re-issued vouch: trust %d, want 375000", got)
	}
}

func TestSpreadThin(t *testing.T) {
	seed := testID(1)
	var r Records
	for i := range 100 {
		r.Vouches = append(r.Vouches, vouch(seed, testID(10+i), MaxWeight))
	}
	s := Compute(r, Options{Now: t0, Seeds: []tis.ID{seed}})
	if got := s.Trust(testID(10)); got != 7_500 {
		t.Fatalf("one of 100 vouchees: trust %d, want 7500", got)
	}
}

func BenchmarkCompute(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	r, seeds := randomRecords(rng, 10_000, 50_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Compute(r, Options{Now: t0, Seeds: seeds})
	}
	b.ReportMetric(float64(len(r.Vouches)), "vouches")
}

// TestSybilsBelowVouchedRelayOwner is the check: 100 Sybils that
// vouch for each other, each with the attestations an attacker can buy
// cheaply and with an attack edge from an attested identity, stay below a
// relay owner with three vouches from well-trusted identities.
func TestSybilsBelowVouchedRelayOwner(t *testing.T) {
	seed, owner, attacker := testID(1), testID(2), testID(3)
	r := Records{Attestations: []*Attestation{attest(attacker, "email-verified")}}
	for i := range 3 {
		w := testID(10 + i) // well trusted: vouched for by the seed
		r.Vouches = append(r.Vouches, vouch(seed, w, 100), vouch(w, owner, 100))
	}
	const n = 100
	sybil := func(i int) tis.ID { return testID(1000 + i) }
	for i := range n {
		for k := 1; k <= 20; k++ {
			r.Vouches = append(r.Vouches, vouch(sybil(i), sybil((i+k)%n), MaxWeight))
		}
		r.Attestations = append(r.Attestations, attest(sybil(i), "email-verified"))
	}
	r.Vouches = append(r.Vouches, vouch(attacker, sybil(0), MaxWeight))
	s := Compute(r, Options{Now: t0, Seeds: []tis.ID{seed}})
	best := 0
	for i := range n {
		best = max(best, s.Score(sybil(i)))
	}
	t.Logf("relay owner %d; best of %d Sybils %d", s.Score(owner), n, best)
	if best >= s.Score(owner) {
		t.Fatalf("a Sybil scores %d, not below the vouched relay owner's %d", best, s.Score(owner))
	}
}
