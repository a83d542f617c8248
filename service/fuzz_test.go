package service

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

// fuzzService is a service with fixed keys, so that fuzz inputs stay
// meaningful from one run to the next.
func fuzzService(t testing.TB) (*testService, *ecdh.PrivateKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5a}, 32))
	id, err := IdentityFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestService(t, 0, 0, ServerOptions{})
	s.id = id
	s.srv = NewServer(id, ServerOptions{Now: s.clock.now, IntroRate: 1e9, IntroBurst: 1 << 30})
	k := &IntroKeys{Relay: testPeer(t), auth: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x11}, 32))}
	if k.enc, err = ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x22}, 32)); err != nil {
		t.Fatal(err)
	}
	s.keys = []*IntroKeys{k}
	s.desc.IntroPoints = []IntroPoint{k.Point()}
	s.srv.AddIntroPoint(k, s.desc.Period, s.desc.PoW)
	client, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x33}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s, client
}

func FuzzParseAddress(f *testing.F) {
	a := testIdentity(f).Address()
	for _, s := range []string{a.String(), a.Host(), a.Host() + ".", "", "x.pikcio", a.String()[:55] + "1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error %v does not wrap ErrInvalidAddress", err)
			}
			return
		}
		again, err := ParseAddress(got.String())
		if err != nil || again != got {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
		got.Blind(PeriodAt(testNow, 0)) // must not panic for a parsed address
	})
}

func FuzzOpenDescriptor(f *testing.F) {
	s, client := fuzzService(f)
	f.Add(s.seal(f, s.desc))
	cd := *s.desc
	cd.ContactsOnly = true
	f.Add(s.seal(f, &cd, client.PublicKey()))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := ParseRecord(raw)
		if err == nil && rec.Key() == "" {
			t.Fatal("record without a key")
		}
		(Validator{Now: s.clock.now}).Validate(KeyFor(s.id.Address(), s.desc.Period), raw)
		d, err := OpenDescriptor(raw, s.id.Address(), s.desc.Period, client)
		if err != nil {
			return
		}
		// Only the service can make a descriptor that opens; it must
		// survive a reseal.
		if len(d.IntroPoints) > MaxIntroPoints {
			t.Fatalf("%d intro points", len(d.IntroPoints))
		}
		var contacts []*ecdh.PublicKey
		if d.ContactsOnly {
			contacts = append(contacts, client.PublicKey())
		}
		again, err := s.id.SealDescriptor(rand.Reader, d, contacts)
		if err != nil {
			t.Fatalf("reseal: %v", err)
		}
		if _, err := OpenDescriptor(again, s.id.Address(), s.desc.Period, client); err != nil {
			t.Fatalf("reopen: %v", err)
		}
	})
}

func FuzzAcceptIntroduce(f *testing.F) {
	s, _ := fuzzService(f)
	c, _ := testClient(f, s, 0)
	f.Add(c.Message)
	f.Add(c.Message[:introHeaderLen])
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, err := ParseIntroduce1(msg)
		if err != nil {
			if len(msg) == IntroduceLen && msg[0] == introVersion && !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v not ErrMalformed", err)
			}
			return
		}
		a, err := s.srv.Accept(msg)
		if err != nil {
			return
		}
		if a.AuthKey != h.AuthKey || len(a.Rendezvous1) != Rendezvous1Len {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func FuzzRendezvous(f *testing.F) {
	s, _ := fuzzService(f)
	c, _ := testClient(f, s, 0)
	a, err := s.srv.Accept(c.Message)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.Rendezvous1)
	f.Add(a.Rendezvous1[CookieLen:])
	f.Fuzz(func(t *testing.T, msg []byte) {
		if cookie, r2, err := ParseRendezvous1(msg); err == nil {
			if !bytes.Equal(cookie[:], msg[:CookieLen]) {
				t.Fatal("cookie")
			}
			msg = r2
		}
		keys, err := c.Finish(msg)
		if err == nil && keys != a.Keys {
			t.Fatal("a reply other than the service's was accepted")
		}
	})
}

func FuzzParseEstablishIntro(f *testing.F) {
	s, _ := fuzzService(f)
	binding := [32]byte{3}
	f.Add(s.keys[0].EstablishIntro(binding, 25, 200))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := ParseEstablishIntro(msg, binding)
		if err == nil && e.AuthKey != s.desc.IntroPoints[0].AuthKey {
			t.Fatal("establish_intro accepted under a key nobody holds")
		}
	})
}

func FuzzResolve(f *testing.F) {
	bob := testIdentity(f).Address()
	for _, s := range []string{"bob.pikcio", bob.Host(), "www." + bob.Host() + ".", "pikcio", ".pikcio", "a..pikcio"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		a, err := Resolve(host, func(name string) (Address, bool) { return bob, name == "bob" })
		switch {
		case err == nil && !IsPikcioHost(host):
			t.Fatalf("resolved %q, not under .pikcio", host)
		case err == nil && a != bob:
			if _, perr := ParseAddress(a.String()); perr != nil {
				t.Fatalf("resolved %q to an invalid address", host)
			}
		case err != nil && !errors.Is(err, ErrUnknownName) && !errors.Is(err, ErrInvalidAddress):
			t.Fatalf("error %v", err)
		}
	})
}

// The layers below are only reachable through encryption, but their
// author can be hostile: a service crafting its own descriptor attacks
// the clients that open it, and a client writes the INTRODUCE plaintext
// the service parses. So each gets a target of its own.

func FuzzDecodeOuter(f *testing.F) {
	s, client := fuzzService(f)
	sub := subcredential(s.id.Address(), s.id.Address().Blind(s.desc.Period))
	open := []byte{authOpen, 0, 3, 1, 2, 3}
	contacts, err := appendClients(rand.Reader, []byte{authContacts}, sub, make([]byte, cookieLen), []*ecdh.PublicKey{client.PublicKey()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(open)
	f.Add(append(contacts, 0, 1, 9))
	f.Fuzz(func(t *testing.T, outer []byte) {
		var d Descriptor
		cookie, inner, err := decodeOuter(outer, sub, client, &d)
		if err == nil && (len(inner) > len(outer) || d.ContactsOnly != (cookie != nil)) {
			t.Fatalf("cookie %x, inner of %d bytes from %d", cookie, len(inner), len(outer))
		}
	})
}

func FuzzDecodeInner(f *testing.F) {
	s, _ := fuzzService(f)
	seed, err := encodeInner(s.desc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:40])
	f.Fuzz(func(t *testing.T, plain []byte) {
		var d Descriptor
		if err := decodeInner(plain, &d); err != nil {
			return
		}
		again, err := encodeInner(&d)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var d2 Descriptor
		if err := decodeInner(again, &d2); err != nil || len(d2.IntroPoints) != len(d.IntroPoints) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeIntroPlain(f *testing.F) {
	rp := testPeer(f)
	plain := make([]byte, 0, introPlainLen)
	plain = append(plain, make([]byte, 8+CookieLen)...)
	plain = append(plain, byte(len(rp)))
	plain = append(plain, rp...)
	plain = append(plain, make([]byte, 32)...)
	f.Add(plain[:introPlainLen])
	f.Add(plain)
	f.Fuzz(func(t *testing.T, plain []byte) {
		var in Introduction
		if err := decodeIntroPlain(plain, &in); err == nil && in.Rendezvous.Relay == "" {
			t.Fatal("introduction without a rendezvous relay")
		}
	})
}
