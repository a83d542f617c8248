package service

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestDescriptorRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, MaxIntroPoints} {
		s := newTestService(t, n, 8, ServerOptions{})
		raw := s.seal(t, s.desc)
		got, err := OpenDescriptor(raw, s.id.Address(), s.desc.Period, nil)
		if err != nil {
			t.Fatalf("%d intro points: %v", n, err)
		}
		if len(got.IntroPoints) == 0 {
			got.IntroPoints = nil
		}
		if len(s.desc.IntroPoints) == 0 {
			s.desc.IntroPoints = nil
		}
		if !reflect.DeepEqual(got, s.desc) {
			t.Fatalf("%d intro points: got %+v, want %+v", n, got, s.desc)
		}
		if len(raw) > MaxDescriptorSize {
			t.Fatalf("descriptor of %d bytes", len(raw))
		}
	}
}

func TestDescriptorContactsOnly(t *testing.T) {
	s := newTestService(t, 3, 0, ServerOptions{})
	s.desc.ContactsOnly = true
	var contacts []*ecdh.PrivateKey
	var pubs []*ecdh.PublicKey
	for range 3 {
		k := testX25519(t)
		contacts = append(contacts, k)
		pubs = append(pubs, k.PublicKey())
	}
	raw := s.seal(t, s.desc, pubs...)
	for i, k := range contacts {
		got, err := OpenDescriptor(raw, s.id.Address(), s.desc.Period, k)
		if err != nil {
			t.Fatalf("contact %d: %v", i, err)
		}
		if !got.ContactsOnly || !reflect.DeepEqual(got.IntroPoints, s.desc.IntroPoints) {
			t.Fatalf("contact %d read %+v", i, got)
		}
	}
	for name, k := range map[string]*ecdh.PrivateKey{"stranger": testX25519(t), "no key": nil} {
		if _, err := OpenDescriptor(raw, s.id.Address(), s.desc.Period, k); !errors.Is(err, ErrNotAuthorized) {
			t.Errorf("%s: %v, want ErrNotAuthorized", name, err)
		}
	}
	// The number of contacts is hidden up to the padding: 1 and 16
	// contacts make descriptors of one size.
	one := s.seal(t, s.desc, pubs[0])
	var sixteen []*ecdh.PublicKey
	for range clientPad {
		sixteen = append(sixteen, testX25519(t).PublicKey())
	}
	if many := s.seal(t, s.desc, sixteen...); len(one) != len(many) {
		t.Fatalf("1 contact: %d bytes, %d contacts: %d bytes", len(one), clientPad, len(many))
	}
	// An open descriptor of the same service is not readable as
	// contacts-only, and the contacts' keys do not matter to it.
	s.desc.ContactsOnly = false
	if d, err := OpenDescriptor(s.seal(t, s.desc), s.id.Address(), s.desc.Period, contacts[0]); err != nil || d.ContactsOnly {
		t.Fatalf("open descriptor: %+v, %v", d, err)
	}
}

// TestDescriptorDHTView is what a DHT server sees: the record and its key
// hold neither the address nor the service key, nor anything of the intro
// points, and nothing repeats between two periods.
func TestDescriptorDHTView(t *testing.T) {
	s := newTestService(t, 3, 0, ServerOptions{})
	a := s.id.Address()
	p1 := s.desc.Period
	r1 := s.seal(t, s.desc)
	s.desc.Revision = s.id.Revision(p1, testNow)
	r1 = s.seal(t, s.desc)
	d2 := *s.desc
	d2.Period = p1.Next()
	d2.Revision = s.id.Revision(d2.Period, testNow)
	r2 := s.seal(t, &d2)
	k1, k2 := KeyFor(a, p1), KeyFor(a, d2.Period)

	secrets := map[string][]byte{
		"address":   []byte(a.String()),
		"host":      []byte(a.Host()),
		"key":       a[:],
		"key (hex)": []byte(hex.EncodeToString(a[:])),
	}
	for i, ip := range s.desc.IntroPoints {
		secrets["relay "+string(rune('0'+i))] = []byte(ip.Relay)
		secrets["relay id "+string(rune('0'+i))] = []byte(ip.Relay.String())
		secrets["auth "+string(rune('0'+i))] = ip.AuthKey[:]
		secrets["enc "+string(rune('0'+i))] = ip.EncKey[:]
	}
	for name, sec := range secrets {
		for _, view := range [][]byte{r1, r2, []byte(k1), []byte(k2)} {
			if bytes.Contains(view, sec) {
				t.Errorf("the DHT sees the %s", name)
			}
		}
	}
	if k1 == k2 {
		t.Fatal("two periods share a DHT key")
	}
	b1, b2 := a.Blind(p1), a.Blind(d2.Period)
	if bytes.Contains(r2, b1[:]) || bytes.Contains(r1, b2[:]) {
		t.Fatal("one period's record names the other's blinded key")
	}
	// Published at the same time, the two records share no revision,
	// and no 16-byte run after the header.
	if bytes.Equal(r1[13:21], r2[13:21]) {
		t.Fatal("records of two periods share a revision")
	}
	for i := headerLen; i+16 <= len(r1); i++ {
		if bytes.Contains(r2, r1[i:i+16]) {
			t.Fatalf("records of two periods share bytes at %d", i)
		}
	}
	// Resealing the same content gives a different record (fresh salts).
	if bytes.Equal(r1[headerLen:], s.seal(t, s.desc)[headerLen:]) {
		t.Fatal("resealing repeats the ciphertext")
	}
}

func TestOpenDescriptorErrors(t *testing.T) {
	s := newTestService(t, 2, 0, ServerOptions{})
	raw := s.seal(t, s.desc)
	other := testIdentity(t).Address()
	tamper := func(off int) []byte {
		b := bytes.Clone(raw)
		b[off] ^= 0x40
		return b
	}
	smallOrder := bytes.Clone(raw)
	copy(smallOrder[headerLen-32:headerLen], []byte{1}) // the neutral element
	clear(smallOrder[headerLen-31 : headerLen])
	tests := []struct {
		name string
		raw  []byte
		addr Address
		p    Period
		want error
	}{
		{"other address", raw, other, s.desc.Period, ErrKeyMismatch},
		{"other period", raw, s.id.Address(), s.desc.Period.Next(), ErrKeyMismatch},
		{"tampered revision", tamper(14), s.id.Address(), s.desc.Period, ErrBadSignature},
		{"tampered body", tamper(len(raw) / 2), s.id.Address(), s.desc.Period, ErrBadSignature},
		{"tampered signature", tamper(len(raw) - 1), s.id.Address(), s.desc.Period, ErrBadSignature},
		{"truncated", raw[:len(raw)-1], s.id.Address(), s.desc.Period, ErrMalformed},
		{"extended", append(bytes.Clone(raw), 0), s.id.Address(), s.desc.Period, ErrMalformed},
		{"empty", nil, s.id.Address(), s.desc.Period, ErrMalformed},
		{"version", tamper(0), s.id.Address(), s.desc.Period, ErrMalformed},
		{"oversize", make([]byte, MaxDescriptorSize+1), s.id.Address(), s.desc.Period, ErrTooLarge},
		{"small-order blinded key", smallOrder, s.id.Address(), s.desc.Period, ErrMalformed},
		{"zero address", raw, Address{}, s.desc.Period, ErrInvalidAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenDescriptor(tt.raw, tt.addr, tt.p, nil); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDescriptorForgery: a record signed by another service under its own
// blinded key never opens as this address's.
func TestDescriptorForgery(t *testing.T) {
	victim := newTestService(t, 1, 0, ServerOptions{})
	mallory := newTestService(t, 1, 0, ServerOptions{})
	forged := mallory.seal(t, mallory.desc)
	// Put the victim's blinded key in the header: the signature breaks.
	vb := victim.id.Address().Blind(victim.desc.Period)
	copy(forged[headerLen-32:headerLen], vb[:])
	if _, err := OpenDescriptor(forged, victim.id.Address(), victim.desc.Period, nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged descriptor: %v", err)
	}
}

func TestSealDescriptorLimits(t *testing.T) {
	s := newTestService(t, MaxIntroPoints+1, 0, ServerOptions{})
	if _, err := s.id.SealDescriptor(rand.Reader, s.desc, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d intro points: %v", MaxIntroPoints+1, err)
	}
	s.desc.IntroPoints = s.desc.IntroPoints[:1]
	pubs := make([]*ecdh.PublicKey, MaxClients+1)
	for i := range pubs {
		pubs[i] = testX25519(t).PublicKey()
	}
	s.desc.ContactsOnly = true
	if _, err := s.id.SealDescriptor(rand.Reader, s.desc, pubs); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d contacts: %v", len(pubs), err)
	}
	raw, err := s.id.SealDescriptor(rand.Reader, s.desc, pubs[:MaxClients])
	if err != nil {
		t.Fatalf("%d contacts: %v", MaxClients, err)
	}
	t.Logf("contacts-only descriptor with %d contacts: %d bytes", MaxClients, len(raw))
	s.desc.PoW.Difficulty = MaxPoWDifficulty + 1
	if _, err := s.id.SealDescriptor(rand.Reader, s.desc, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("pow difficulty: %v", err)
	}
	s.desc.PoW.Difficulty = 0
	s.desc.ContactsOnly = false
	for _, relay := range []peer.ID{"", peer.ID(make([]byte, maxPeerIDLen+1))} {
		d := *s.desc
		d.IntroPoints = []IntroPoint{{Relay: relay}}
		if _, err := s.id.SealDescriptor(rand.Reader, &d, nil); !errors.Is(err, ErrMalformed) {
			t.Fatalf("relay ID of %d bytes: %v", len(relay), err)
		}
		c, err := Introduce(context.Background(), rand.Reader, s.id.Address(), s.desc, s.desc.IntroPoints[0], RendezvousPoint{Relay: relay}, testNow)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("rendezvous relay ID of %d bytes: %v, %v", len(relay), c, err)
		}
	}
	s.desc.Period.Length = 90 * time.Second
	if _, err := s.id.SealDescriptor(rand.Reader, s.desc, nil); err == nil {
		t.Fatal("period of 90s sealed")
	}
}

// BenchmarkDescriptor prints the cost of sealing and opening a descriptor
// with 3 intro points, open and for 128 contacts (opened by the last), and
// a DHT server's cost of validating one.
func BenchmarkDescriptor(b *testing.B) {
	s := newTestService(b, 3, 0, ServerOptions{})
	me := testX25519(b)
	var contacts []*ecdh.PublicKey
	for range MaxClients - 1 {
		contacts = append(contacts, testX25519(b).PublicKey())
	}
	contacts = append(contacts, me.PublicKey())
	for _, mode := range []struct {
		name     string
		contacts []*ecdh.PublicKey
	}{{"open", nil}, {"contacts=128", contacts}} {
		d := *s.desc
		d.ContactsOnly = mode.contacts != nil
		raw := s.seal(b, &d, mode.contacts...)
		b.Run(mode.name+"/seal", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.seal(b, &d, mode.contacts...)
			}
			b.ReportMetric(float64(len(raw)), "bytes")
		})
		b.Run(mode.name+"/open", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := OpenDescriptor(raw, s.id.Address(), d.Period, me); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/validate", func(b *testing.B) {
			v := Validator{Now: func() time.Time { return testNow }}
			key := KeyFor(s.id.Address(), d.Period)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := v.Validate(key, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
