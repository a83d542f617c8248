package trust

import (
	"bytes"
	"cmp"
	"slices"
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

// edge is an active vouch, by node index.
type edge struct {
	from, to int
	weight   int64
}

// Scores are the result of Compute.
type Scores struct {
	opts   Options
	ids    []tis.ID       // sorted
	index  map[tis.ID]int // lookups only, never iterated
	base   []int64        // s(i)
	seed   []bool
	kinds  [][]string // sorted distinct attestation kinds
	out    []int64    // W(j): total outgoing weight
	in     [][]edge   // incoming edges per node, sorted by voucher
	trust  []int64    // final t(i)
	vouchT []int64    // final min(Unit, Keep*in(i)/Unit)
}

func idLess(a, b tis.ID) int { return bytes.Compare(a[:], b[:]) }

func inWindow(issued, expires, now time.Time) bool {
	return !now.Add(MaxClockSkew).Before(issued) && (expires.IsZero() || now.Before(expires))
}

type pair struct{ from, to tis.ID }

// activeVouches returns the vouches that count at now: per (voucher,
// vouchee) the latest valid vouch, unless a withdrawal issued at the same
// time or later exists.
func activeVouches(r Records, now time.Time) []*Vouch {
	vs := make([]*Vouch, 0, len(r.Vouches))
	for _, v := range r.Vouches {
		if v != nil && inWindow(v.IssuedAt, v.Expires, now) {
			vs = append(vs, v)
		}
	}
	// Canonical order: pair, then latest first (ties: later expiry,
	// higher weight, signature bytes), so the first of a pair wins.
	slices.SortFunc(vs, func(a, b *Vouch) int {
		return cmp.Or(idLess(a.Voucher, b.Voucher), idLess(a.Vouchee, b.Vouchee),
			b.IssuedAt.Compare(a.IssuedAt), b.Expires.Compare(a.Expires),
			cmp.Compare(b.Weight, a.Weight), bytes.Compare(a.Signature, b.Signature))
	})
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
	var out []*Vouch
	for i, v := range vs {
		if i > 0 && vs[i-1].Voucher == v.Voucher && vs[i-1].Vouchee == v.Vouchee {
			continue
		}
		if t, ok := withdrawn[pair{v.Voucher, v.Vouchee}]; ok && !v.IssuedAt.After(t) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// Compute returns the Trust Capital Index of every identity named in r or
// in opts.Seeds. The result depends only on the set of records and the
// options, not on their order (see doc.go for the formula).
func Compute(r Records, opts Options) *Scores {
	opts.defaults()
	now := opts.Now
	vouches := activeVouches(r, now)

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

	// Nodes, sorted.
	ids := slices.Clone(opts.Seeds)
	for _, a := range atts {
		ids = append(ids, a.subject)
	}
	for _, v := range vouches {
		ids = append(ids, v.Voucher, v.Vouchee)
	}
	slices.SortFunc(ids, idLess)
	ids = slices.Compact(ids)
	n := len(ids)
	s := &Scores{
		opts:   opts,
		ids:    ids,
		index:  make(map[tis.ID]int, n),
		base:   make([]int64, n),
		seed:   make([]bool, n),
		kinds:  make([][]string, n),
		out:    make([]int64, n),
		in:     make([][]edge, n),
		trust:  make([]int64, n),
		vouchT: make([]int64, n),
	}
	for i, id := range ids {
		s.index[id] = i
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
	// vouches are sorted by voucher then vouchee, so each in[i] is sorted
	// by voucher.
	for _, v := range vouches {
		e := edge{from: s.index[v.Voucher], to: s.index[v.Vouchee], weight: int64(v.Weight)}
		s.out[e.from] += e.weight
		s.in[e.to] = append(s.in[e.to], e)
	}

	prev := slices.Clone(s.base)
	next := make([]int64, n)
	for range opts.Iterations {
		for i := range n {
			next[i], s.vouchT[i] = s.step(i, prev)
		}
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
	for _, e := range s.in[i] {
		in += s.share(e, t)
	}
	fromVouches = min(Unit, min(in, 1<<40)*s.opts.Keep/Unit)
	return max(s.base[i], fromVouches), fromVouches
}

// share is what edge e carries: t(from) * w / W(from), rounded down.
func (s *Scores) share(e edge, t []int64) int64 {
	return t[e.from] * e.weight / s.out[e.from]
}

// toScore rounds fixed-point trust to 0..100, halves up.
func toScore(t int64) int { return int((t*100 + Unit/2) / Unit) }

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
	x.NumVouchers = len(s.in[i])
	for _, e := range s.in[i] {
		x.Vouchers = append(x.Vouchers, Contribution{
			Voucher:      s.ids[e.from],
			VoucherScore: toScore(s.trust[e.from]),
			Weight:       e.weight,
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
