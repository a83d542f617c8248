package tis

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// BenchmarkVerifyNodeCertBytes measures what a client pays per relay
// descriptor: decode and verify a node certificate against a revocation
// list of 10 000 serials.
func BenchmarkVerifyNodeCertBytes(b *testing.B) {
	root := newRootKey(b)
	n := newTestNodeB(b)
	now := time.Now()
	raw, _ := n.key.GetPublic().Raw()
	c := issue(b, root, TypeNode, ed25519.PublicKey(raw), now.Add(-time.Hour), 24*time.Hour)
	data, err := c.Encode()
	if err != nil {
		b.Fatal(err)
	}
	revs := &RevocationList{Sequence: 1, IssuedAt: now.Truncate(time.Second), NextUpdate: now.Truncate(time.Second).Add(time.Hour)}
	for i := range 10000 {
		var s Serial
		s[0], s[1] = byte(i>>8), byte(i)
		revs.Serials = append(revs.Serials, s)
	}
	rootPub := root.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyNodeCertBytes(data, rootPub, n.id, now, revs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}
