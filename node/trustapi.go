package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// TrustPath is the status server's trust query: GET TrustPath + ID, where
// ID is a Matryoshka ID (64 hex digits), a relay's peer ID, or the name
// of a contact. It answers a TrustReport as JSON; `pikcio trust show`
// prints it. Like the rest of the status server it answers only on the
// loopback; it says nothing the node does not already publish or hold.
const TrustPath = "/api/trust/"

// Errors of trust queries.
var (
	// ErrNoTrust: the node has no TIS configured, so no trust view.
	ErrNoTrust = errors.New("no trust view: configure [tis]")
	// ErrUnknownID: the query is not an ID, a peer ID or a contact name.
	ErrUnknownID = errors.New("not a Matryoshka ID, relay peer ID or contact name")
)

// TrustReport is the answer to a trust query.
type TrustReport struct {
	Query string `json:"query"`
	// Kind is "identity" (a Matryoshka ID and its TCI) or "relay" (a
	// relay known by its peer ID, and the band the TIS states for its
	// operator).
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Contact string `json:"contact,omitempty"` // local name, if a contact
	// Computed is when the scores were last computed; Identities how many
	// identities they cover.
	Computed   time.Time `json:"computed"`
	Identities int       `json:"identities"`

	// For an identity.
	Known        bool           `json:"known,omitempty"` // some record names it
	Score        *int           `json:"score,omitempty"`
	Seed         bool           `json:"seed,omitempty"`
	Attestations []string       `json:"attestations,omitempty"`
	BasePoints   float64        `json:"base_points,omitempty"`  // trust from being a seed or attested, in score points
	VouchPoints  float64        `json:"vouch_points,omitempty"` // trust from vouches, in score points
	Vouchers     []VoucherShare `json:"vouchers,omitempty"`     // largest first
	NumVouchers  int            `json:"num_vouchers,omitempty"` // all of them

	// For a relay.
	Band        *web.Band `json:"band,omitempty"`
	BandExpires time.Time `json:"band_expires,omitzero"`
}

// VoucherShare is one voucher's part in a score.
type VoucherShare struct {
	ID      string  `json:"id"`
	Contact string  `json:"contact,omitempty"`
	Score   int     `json:"score"`
	Weight  int64   `json:"weight"`
	OutOf   int64   `json:"out_of"` // the voucher's total outgoing weight
	Points  float64 `json:"points"` // score points this vouch brings
}

// points converts fixed-point trust to score points, to two decimals.
func points(t int64) float64 { return math.Round(float64(t)/float64(trust.Unit)*10000) / 100 }

// TrustReport answers a trust query (see TrustPath).
func (n *Node) TrustReport(query string) (*TrustReport, error) {
	nt := n.trust
	if nt == nil {
		return nil, ErrNoTrust
	}
	if err := nt.contacts.ReloadIfChanged(); err != nil {
		return nil, err
	}
	r := &TrustReport{Query: query, Computed: nt.view.Updated()}
	scores := nt.view.Scores()
	if scores != nil {
		r.Identities = scores.Len()
	}
	if pid, err := peer.Decode(query); err == nil {
		r.Kind, r.ID = "relay", pid.String()
		if c, ok := nt.contacts.ByNode(pid); ok {
			r.Contact = c.Name
		}
		if pid == n.host.ID() {
			if lo, hi, ok := nt.ownBand(); ok {
				r.Band = &web.Band{Min: lo, Max: hi}
			}
			return r, nil
		}
		if d, ok := n.disc.Descriptor(pid); ok {
			if lo, hi, ok := nt.band(d); ok {
				r.Band = &web.Band{Min: lo, Max: hi}
				nt.mu.Lock()
				r.BandExpires = nt.relays[pid].expires
				nt.mu.Unlock()
			}
		}
		return r, nil
	}
	id, err := tis.ParseID(query)
	if err != nil {
		found := false
		for _, c := range nt.contacts.List() {
			if strings.EqualFold(c.Name, query) {
				id, found = c.ID, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%q: %w", query, ErrUnknownID)
		}
	}
	r.Kind, r.ID = "identity", id.String()
	if c, ok := nt.contacts.Get(id); ok {
		r.Contact = c.Name
	}
	if scores == nil {
		return r, nil
	}
	x := scores.Explain(id)
	score := x.Score
	r.Known, r.Score, r.Seed, r.Attestations = x.Known, &score, x.Seed, x.Attestations
	r.BasePoints, r.VouchPoints, r.NumVouchers = points(x.Base), points(x.FromVouches), x.NumVouchers
	for _, v := range x.Vouchers {
		s := VoucherShare{ID: v.Voucher.String(), Score: v.VoucherScore, Weight: v.Weight, OutOf: v.OutWeight, Points: points(v.Trust)}
		if c, ok := nt.contacts.Get(v.Voucher); ok {
			s.Contact = c.Name
		}
		r.Vouchers = append(r.Vouchers, s)
	}
	return r, nil
}

// serveTrust is the handler of TrustPath.
func (n *Node) serveTrust(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimPrefix(r.URL.Path, TrustPath)
	rep, err := n.TrustReport(q)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case errors.Is(err, ErrUnknownID):
		w.WriteHeader(http.StatusNotFound)
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if err != nil {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}
