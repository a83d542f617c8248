package trust

import (
	"fmt"
	"math"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/web"
)

// points converts fixed-point trust to score points, to two decimals.
func points(t int64) float64 { return math.Round(float64(t)/float64(Unit)*10000) / 100 }

// Report answers a trust query (web.TrustPath) about query: a relay's
// peer ID, a Matryoshka ID or a contact's name. self is the node's own
// peer ID, and relay looks up a relay the node knows.
func (a *Agent) Report(query string, self peer.ID, relay func(peer.ID) (Relay, bool)) (*web.TrustReport, error) {
	if err := a.contacts.ReloadIfChanged(); err != nil {
		return nil, err
	}
	r := &web.TrustReport{Query: query, Computed: a.view.Updated()}
	scores := a.view.Scores()
	if scores != nil {
		r.Identities = scores.Len()
	}
	if pid, err := peer.Decode(query); err == nil {
		r.Kind, r.ID = "relay", pid.String()
		if c, ok := a.contacts.ByNode(pid); ok {
			r.Contact = c.Name
		}
		if pid == self {
			if lo, hi, ok := a.OwnBand(); ok {
				r.Band = &web.Band{Min: lo, Max: hi}
			}
			return r, nil
		}
		if d, ok := relay(pid); ok {
			if lo, hi, expires, ok := a.Band(d); ok {
				r.Band, r.BandExpires = &web.Band{Min: lo, Max: hi}, expires
			}
		}
		return r, nil
	}
	id, err := tis.ParseID(query)
	if err != nil {
		found := false
		for _, c := range a.contacts.List() {
			if strings.EqualFold(c.Name, query) {
				id, found = c.ID, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%q: %w", query, web.ErrUnknownID)
		}
	}
	r.Kind, r.ID = "identity", id.String()
	if c, ok := a.contacts.Get(id); ok {
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
		s := web.VoucherShare{ID: v.Voucher.String(), Score: v.VoucherScore, Weight: v.Weight, OutOf: v.OutWeight, Points: points(v.Trust)}
		if c, ok := a.contacts.Get(v.Voucher); ok {
			s.Contact = c.Name
		}
		r.Vouchers = append(r.Vouchers, s)
	}
	return r, nil
}
