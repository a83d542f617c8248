package trust_test

import (
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// TestAgentStatus: the identity section names the node's certificates and
// counts its contacts; a hop shows its verified band only, and its
// contact's name whether or not its descriptor is known.
func TestAgentStatus(t *testing.T) {
	s, _ := agentTIS(t)
	node, a := newAgent(t, s, "client", trust.Settings{Refresh: time.Hour}, nil)
	relay := s.EnrollNode(t, "relay", tis.AgentOptions{})
	relayNode := relay.Agent.Enrollment().NodeCert.ID
	good := statement(t, s, relayNode, 85, time.Now().Add(time.Hour))
	en := relay.Agent.Enrollment()
	if err := a.Contacts().AddWithNode("Relay Op", en.MatryoshkaCert, en.NodeCert, time.Now()); err != nil {
		t.Fatal(err)
	}

	id, identities := a.IdentityStatus()
	own := node.Agent.Enrollment()
	if !id.Enrolled || id.NodeID != own.NodeCert.ID.String() || id.MatryoshkaID != own.MatryoshkaCert.ID.String() ||
		!id.NodeCertExpires.Equal(own.NodeCert.Expires) || id.Contacts != 1 || id.Score != nil || identities != 0 {
		t.Fatalf("IdentityStatus = %+v, %d", id, identities)
	}

	lo, hi := trust.BandRange(trust.BandOf(85))
	forged := append([]byte(nil), good...)
	forged[len(forged)-1] ^= 1
	tests := []struct {
		name    string
		relay   trust.Relay
		known   bool
		band    bool
		contact string
	}{
		{"stated", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: good}, true, true, "Relay Op"},
		{"forged", trust.Relay{ID: relay.ID, Cert: relay.Agent.Certificate(), Statement: forged}, true, false, "Relay Op"},
		{"descriptor unknown", trust.Relay{}, false, false, "Relay Op"},
		{"not a contact", trust.Relay{ID: node.ID, Cert: node.Agent.Certificate()}, true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hop := tt.relay.ID
			if !tt.known {
				hop = relay.ID
			}
			tci, contact := a.HopStatus(hop, tt.relay, tt.known)
			if (tci != nil) != tt.band || (tci != nil && (tci.Min != lo || tci.Max != hi)) || contact != tt.contact {
				t.Fatalf("HopStatus = %+v, %q; want band %v, contact %q", tci, contact, tt.band, tt.contact)
			}
		})
	}
}
