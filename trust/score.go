package trust

import (
	"bytes"
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// Unit is fixed-point 1.0: trust values are integers in [0, Unit].
const Unit int64 = 1_000_000

// Defaults of Options, in one place (see doc.go for their role).
const (
	// DefaultKeep is the fraction (of Unit) of incoming vouch trust an
	// identity keeps: 0.75, so damping toward the seed is 0.25.
	DefaultKeep int64 = 750_000
	// DefaultAttestationTrust is the base trust per distinct attestation
	// kind: 0.1 (10 points).
	DefaultAttestationTrust int64 = 100_000
	// DefaultAttestationCap caps the base trust from attestations: 0.3.
	DefaultAttestationCap int64 = 300_000
	// DefaultIterations is the fixed number of iterations.
	DefaultIterations = 30
	// ExplainTop is how many vouchers Explain lists.
	ExplainTop = 10
)

// Options configure Compute. Zero fields take the defaults above.
type Options struct {
	// Now is the time records are checked against (default time.Now()).
	Now time.Time
	// Seeds are pre-trusted identities with base trust Unit, such as the
	// TIS operator's own identity named in the configuration.
	Seeds []tis.ID
	// Keep is the fraction of incoming trust kept, in (0, Unit).
	Keep int64
	// AttestationTrust and AttestationCap give the base trust from
	// attestations: AttestationTrust per distinct kind, at most
	// AttestationCap.
	AttestationTrust, AttestationCap int64
	// Iterations is the number of iterations.
	Iterations int
}

func (o *Options) defaults() {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Keep <= 0 || o.Keep >= Unit {
		o.Keep = DefaultKeep
	}
	if o.AttestationTrust <= 0 {
		o.AttestationTrust = DefaultAttestationTrust
	}
	if o.AttestationCap <= 0 || o.AttestationCap > Unit {
		o.AttestationCap = DefaultAttestationCap
	}
	if o.Iterations <= 0 {
		o.Iterations = DefaultIterations
	}
}

// Records are the inputs of Compute. Compute trusts them: pass only
// records that passed their Verify method.
type Records struct {
	Vouches      []*Vouch
	Withdrawals  []*Withdrawal
	Attestations []*Attestation
}

// edge is an active vouch, by node index, with the voucher's total
// outgoing weight (so an iteration reads one other node's value per edge).
type edge struct {
	from, to int32
	weight   uint32
	out      uint32
}

// Scores are the result of Compute.
type Scores struct {
	opts  Options
	ids   []tis.ID       // sorted
	index map[tis.ID]int // lookups only, never iterated
	base  []int64        // s(i)
	seed  []bool
	kinds [][]string // sorted distinct attestation kinds
	out   []int64    // W(j): total outgoing weight
	// edges are the incoming edges of every node, node after node, each
	// node's sorted by voucher: node i's are edges[start[i]:start[i+1]].
	edges  []edge
	start  []int32
	trust  []int64 // final t(i)
	vouchT []int64 // final min(Unit, Keep*in(i)/Unit)
}

func idLess(a, b tis.ID) int { return bytes.Compare(a[:], b[:]) }

func inWindow(issued, expires, now time.Time) bool {
	return !now.Add(MaxClockSkew).Before(issued) && (expires.IsZero() || now.Before(expires))
}

type pair struct{ from, to tis.ID }

// rankedVouch is a vouch whose voucher and vouchee are node indices.
type rankedVouch struct {
	from, to int32
	v        *Vouch
}

// Compute returns the Trust Capital Index of every identity named in r or
// in opts.Seeds. The result depends only on the set of records and the
// options, not on their order (see doc.go for the formula).
//
// It runs in O(E log E) for E vouches: identities are numbered through one
// map, sorted once, and the vouches sorted by those numbers; the
// iterations then work on flat arrays, split over the CPUs.
func Compute(r Records, opts Options) *Scores {
	opts.defaults()
	now := opts.Now

	// Attestation kinds per subject.
	type sk struct {
		subject tis.ID
		kind    string
	}
	var atts []sk
	for _, a := range r.Attestations {
		if a != nil && inWindow(a.IssuedAt, a.Expires, now) {
			atts = append(atts, sk{a.Subject, a.Kind})
		}
	}
	slices.SortFunc(atts, func(a, b sk) int { return cmp.Or(idLess(a.subject, b.subject), cmp.Compare(a.kind, b.kind)) })
	atts = slices.Compact(atts)

	// Number every identity in order of appearance (tmp), then sort.
	index := make(map[tis.ID]int, len(opts.Seeds)+len(atts)+len(r.Vouches)/4)
	var ids []tis.ID
	number := func(id tis.ID) int32 {
		i, ok := index[id]
		if !ok {
			i = len(ids)
			index[id] = i
			ids = append(ids, id)
		}
		return int32(i)
	}
	for _, id := range opts.Seeds {
		number(id)
	}
	for _, a := range atts {
		number(a.subject)
	}
	vs := make([]rankedVouch, 0, len(r.Vouches))
	var lastVoucher tis.ID
	var lastFrom int32 = -1
	for _, v := range r.Vouches {
		if v == nil || !inWindow(v.IssuedAt, v.Expires, now) {
			continue
		}
		if lastFrom < 0 || v.Voucher != lastVoucher {
			lastVoucher, lastFrom = v.Voucher, number(v.Voucher)
		}
		vs = append(vs, rankedVouch{from: lastFrom, to: number(v.Vouchee), v: v})
	}
	n := len(ids)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return idLess(ids[a], ids[b]) })
	rank := make([]int32, n)
	sorted := make([]tis.ID, n)
	for pos, tmp := range order {
		rank[tmp] = int32(pos)
		sorted[pos] = ids[tmp]
		index[ids[tmp]] = pos
	}
	ids, order = sorted, nil
	for k := range vs {
		vs[k].from, vs[k].to = rank[vs[k].from], rank[vs[k].to]
	}

	// Canonical order: pair, then latest first (ties: later expiry,
	// higher weight, signature bytes), so the first of a pair wins.
	slices.SortFunc(vs, func(a, b rankedVouch) int {
		if c := cmp.Compare(a.from, b.from); c != 0 {
			return c
		}
		if c := cmp.Compare(a.to, b.to); c != 0 {
			return c
		}
		if c := b.v.IssuedAt.Compare(a.v.IssuedAt); c != 0 {
			return c
		}
		if c := b.v.Expires.Compare(a.v.Expires); c != 0 {
			return c
		}
		if c := cmp.Compare(b.v.Weight, a.v.Weight); c != 0 {
			return c
		}
		return bytes.Compare(a.v.Signature, b.v.Signature)
	})
	// Per pair the first counts, unless withdrawn at or after its issue.
	withdrawn := make(map[pair]time.Time, len(r.Withdrawals))
	for _, w := range r.Withdrawals {
		if w == nil || !inWindow(w.IssuedAt, time.Time{}, now) {
			continue
		}
		p := pair{w.Voucher, w.Vouchee}
		if t, ok := withdrawn[p]; !ok || w.IssuedAt.After(t) {
			withdrawn[p] = w.IssuedAt
		}
	}
	active := vs[:0]
	for k, rv := range vs {
		if k > 0 && vs[k-1].from == rv.from && vs[k-1].to == rv.to {
			continue
		}
		if len(withdrawn) > 0 {
			if t, ok := withdrawn[pair{rv.v.Voucher, rv.v.Vouchee}]; ok && !rv.v.IssuedAt.After(t) {
				continue
			}
		}
		active = append(active, rv)
	}
	// active aliases vs; a withdrawn or duplicate entry was skipped, never
	// read again, so compacting in place is safe.

	s := &Scores{
		opts:   opts,
		ids:    ids,
		index:  index,
		base:   make([]int64, n),
		seed:   make([]bool, n),
		kinds:  make([][]string, n),
		out:    make([]int64, n),
		start:  make([]int32, n+1),
		trust:  make([]int64, n),
		vouchT: make([]int64, n),
	}
	for _, a := range atts {
		i := s.index[a.subject]
		s.kinds[i] = append(s.kinds[i], a.kind)
		s.base[i] = min(opts.AttestationCap, s.base[i]+opts.AttestationTrust)
	}
	for _, id := range opts.Seeds {
		i := s.index[id]
		s.seed[i], s.base[i] = true, Unit
	}
	// Edges by vouchee (a counting sort); active is sorted by voucher, so
	// each node's incoming edges stay sorted by voucher.
	for _, rv := range active {
		s.out[rv.from] += int64(rv.v.Weight)
		s.start[rv.to+1]++
	}
	for i := range n {
		s.start[i+1] += s.start[i]
	}
	s.edges = make([]edge, len(active))
	fill := slices.Clone(s.start[:n])
	for _, rv := range active {
		// Outgoing weight over 32 bits would take 16 million vouches of
		// one voucher (a bundle holds MaxBundleVouches): capped.
		s.edges[fill[rv.to]] = edge{from: rv.from, to: rv.to, weight: uint32(rv.v.Weight), out: uint32(min(s.out[rv.from], math.MaxUint32))}
		fill[rv.to]++
	}
	vs, active = nil, nil

	prev := slices.Clone(s.base)
	next := make([]int64, n)
	// Each iteration is split over the CPUs by node ranges: every node's
	// new value depends only on the previous vector, so the result is the
	// same as one loop's.
	parts := min(runtime.GOMAXPROCS(0), max(1, len(s.edges)/100_000))
	for range opts.Iterations {
		var wg sync.WaitGroup
		for p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := p * n / parts; i < (p+1)*n/parts; i++ {
					next[i], s.vouchT[i] = s.step(i, prev)
				}
			}()
		}
		wg.Wait()
		prev, next = next, prev
	}
	if opts.Iterations > 0 {
		copy(s.trust, prev)
	}
	return s
}

// step computes t'(i) from the previous vector t.
func (s *Scores) step(i int, t []int64) (trust, fromVouches int64) {
	var in int64
	for _, e := range s.incoming(i) {
		in += s.share(e, t)
	}
	fromVouches = min(Unit, min(in, 1<<40)*s.opts.Keep/Unit)
	return max(s.base[i], fromVouches), fromVouches
}

// incoming returns the edges into node i, sorted by voucher.
func (s *Scores) incoming(i int) []edge { return s.edges[s.start[i]:s.start[i+1]] }

// share is what edge e carries: t(from) * w / W(from), rounded down.
// Trust is at most Unit and a weight at most 255, so the product fits in
// 32 bits and the division is a 32-bit one, the same result as 64-bit.
func (s *Scores) share(e edge, t []int64) int64 {
	return int64(uint32(t[e.from]) * e.weight / e.out)
}

// toScore rounds fixed-point trust to 0..100, halves up.
func toScore(t int64) int { return int((t*100 + Unit/2) / Unit) }

// Vouches returns the number of vouches that counted: the latest per
// voucher and vouchee, valid and not withdrawn.
func (s *Scores) Vouches() int { return len(s.edges) }

// Len returns the number of identities scored.
func (s *Scores) Len() int { return len(s.ids) }

// IDs returns the scored identities, sorted.
func (s *Scores) IDs() []tis.ID { return slices.Clone(s.ids) }

// Trust returns the fixed-point trust of id (0 if unknown).
func (s *Scores) Trust(id tis.ID) int64 {
	if i, ok := s.index[id]; ok {
		return s.trust[i]
	}
	return 0
}

// Score returns the TCI of id, 0..100 (0 if unknown).
func (s *Scores) Score(id tis.ID) int { return toScore(s.Trust(id)) }

// Contribution is one voucher's part of an identity's trust.
type Contribution struct {
	Voucher tis.ID
	// VoucherScore is the voucher's own TCI.
	VoucherScore int
	// Weight is the vouch's weight, OutWeight the voucher's total outgoing
	// weight: the voucher passes on Weight/OutWeight of its trust.
	Weight, OutWeight int64
	// Trust is the fixed-point trust this vouch brings, after Keep:
	// t(voucher)*Weight/OutWeight*Keep/Unit (the sum of these may differ
	// from FromVouches by rounding and by the cap).
	Trust int64
}

// Explanation says why an identity has its score.
type Explanation struct {
	ID    tis.ID
	Known bool // false: no record names ID
	Score int
	Trust int64
	// Seed reports a pre-trusted identity (Options.Seeds).
	Seed bool
	// Attestations are the distinct valid attestation kinds, sorted.
	Attestations []string
	// Base is s(i): Unit for a seed, else the attestation trust.
	Base int64
	// FromVouches is min(Unit, Keep * sum of incoming shares / Unit).
	FromVouches int64
	// Vouchers are the top ExplainTop contributions, largest first;
	// NumVouchers counts them all.
	Vouchers    []Contribution
	NumVouchers int
}

// Explain returns the contributions behind the score of id.
func (s *Scores) Explain(id tis.ID) Explanation {
	x := Explanation{ID: id}
	i, ok := s.index[id]
	if !ok {
		return x
	}
	x.Known, x.Trust, x.Score = true, s.trust[i], toScore(s.trust[i])
	x.Seed, x.Base, x.FromVouches = s.seed[i], s.base[i], s.vouchT[i]
	x.Attestations = slices.Clone(s.kinds[i])
	x.NumVouchers = len(s.incoming(i))
	for _, e := range s.incoming(i) {
		x.Vouchers = append(x.Vouchers, Contribution{
			Voucher:      s.ids[e.from],
			VoucherScore: toScore(s.trust[e.from]),
			Weight:       int64(e.weight),
			OutWeight:    s.out[e.from],
			Trust:        s.share(e, s.trust) * s.opts.Keep / Unit,
		})
	}
	slices.SortStableFunc(x.Vouchers, func(a, b Contribution) int { return cmp.Compare(b.Trust, a.Trust) })
	if len(x.Vouchers) > ExplainTop {
		x.Vouchers = x.Vouchers[:ExplainTop]
	}
	return x
}
