package service

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testNow is a fixed clock, mid-period.
var testNow = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)

func testPeer(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testX25519(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testService is a service with n intro points and their keys, and its
// descriptor for the period of testNow.
type testService struct {
	id    *Identity
	keys  []*IntroKeys
	desc  *Descriptor
	srv   *Server
	clock *fakeClock
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestService(t testing.TB, n int, pow uint8, o ServerOptions) *testService {
	t.Helper()
	s := &testService{id: testIdentity(t), clock: &fakeClock{t: testNow}}
	s.desc = &Descriptor{Period: PeriodAt(testNow, 0), Revision: uint64(testNow.Unix())}
	s.desc.PoW.Difficulty = pow
	if _, err := rand.Read(s.desc.PoW.Seed[:]); err != nil {
		t.Fatal(err)
	}
	o.Now = s.clock.now
	s.srv = NewServer(s.id, o)
	for range n {
		k, err := NewIntroKeys(rand.Reader, testPeer(t))
		if err != nil {
			t.Fatal(err)
		}
		s.keys = append(s.keys, k)
		s.desc.IntroPoints = append(s.desc.IntroPoints, k.Point())
		s.srv.AddIntroPoint(k, s.desc.Period, s.desc.PoW)
	}
	return s
}

func (s *testService) seal(t testing.TB, d *Descriptor, contacts ...*ecdh.PublicKey) []byte {
	t.Helper()
	raw, err := s.id.SealDescriptor(rand.Reader, d, contacts)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
