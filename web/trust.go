package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// TrustPath is the trust query: GET TrustPath + ID, where ID is a
// Matryoshka ID (64 hex digits), a relay's peer ID, or the name of a
// contact. It answers a TrustReport as JSON; `pikcio trust show` prints
// it. Like the rest of the status server it answers only on the
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
	Band        *Band     `json:"band,omitempty"`
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

// TrustHandler serves TrustPath from report: 404 for ErrUnknownID, 503
// for any other error, both with {"error": ...}.
func TrustHandler(report func(query string) (*TrustReport, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := strings.TrimPrefix(r.URL.Path, TrustPath)
		rep, err := report(q)
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
	})
}
