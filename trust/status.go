package trust

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/web"
)

// What the status page shows of the trust system (web's models).

// IdentityStatus is the status page's identity section of the enrolled
// node: its certificates' IDs and expiries, its number of contacts and,
// once the view has scores, its own score; identities is how many
// identities the view scores (0 before its first computation).
func (a *Agent) IdentityStatus() (id *web.Identity, identities int) {
	en := a.tis.Enrollment()
	id = &web.Identity{
		Enrolled:              true,
		NodeID:                en.NodeCert.ID.String(),
		MatryoshkaID:          en.MatryoshkaCert.ID.String(),
		NodeCertExpires:       en.NodeCert.Expires,
		MatryoshkaCertExpires: en.MatryoshkaCert.Expires,
		Contacts:              len(a.contacts.List()),
	}
	if s := a.view.Scores(); s != nil {
		score := s.Score(en.MatryoshkaCert.ID)
		id.Score = &score
		identities = s.Len()
	}
	return id, identities
}

// HopStatus is what the status page shows of a circuit's hop id: the band
// of r, its descriptor's record (known false when the directory has none),
// nil if no statement verifies; and the name of the contact whose node it
// is, "" if none.
func (a *Agent) HopStatus(id peer.ID, r Relay, known bool) (tci *web.Band, contact string) {
	if known {
		if lo, hi, _, ok := a.Band(r); ok {
			tci = &web.Band{Min: lo, Max: hi}
		}
	}
	if c, ok := a.contacts.ByNode(id); ok {
		contact = c.Name
	}
	return tci, contact
}
