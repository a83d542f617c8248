package service

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

// circ stands for a relay's circuit handle.
type circ struct{ name string }

// TestRendezvousThroughRelays runs the whole exchange through the intro
// point's and the rendezvous relay's tables, as the relay cells will carry
// it: ESTABLISH_INTRO, ESTABLISH_RENDEZVOUS, INTRODUCE1 -> INTRODUCE2,
// RENDEZVOUS1 -> RENDEZVOUS2.
func TestRendezvousThroughRelays(t *testing.T) {
	s := newTestService(t, 1, 0, ServerOptions{})
	intro := NewIntroTable[*circ](0)
	rendez := NewRendezvousTable[*circ](0, 0)
	svcIntro, cliRend := &circ{"service intro"}, &circ{"client rendezvous"}
	binding := [32]byte{42}
	if _, err := intro.Establish(svcIntro, s.keys[0].EstablishIntro(binding, 10, 20), binding); err != nil {
		t.Fatal(err)
	}
	c, _ := testClient(t, s, 0)
	if err := rendez.Establish(cliRend, c.Cookie[:], testNow); err != nil {
		t.Fatal(err)
	}
	to, err := intro.Route(c.Message, testNow)
	if err != nil || to != svcIntro {
		t.Fatalf("intro point routes to %v, %v", to, err)
	}
	a, err := s.srv.Accept(c.Message) // forwarded unchanged as INTRODUCE2
	if err != nil {
		t.Fatal(err)
	}
	joined, r2, err := rendez.Join(a.Rendezvous1, testNow)
	if err != nil || joined != cliRend {
		t.Fatalf("rendezvous joins %v, %v", joined, err)
	}
	keys, err := c.Finish(r2)
	if err != nil || keys != a.Keys {
		t.Fatalf("Finish: %v (keys equal: %v)", err, keys == a.Keys)
	}
	// A cookie joins once.
	if _, _, err := rendez.Join(a.Rendezvous1, testNow); !errors.Is(err, ErrUnknownCookie) {
		t.Fatalf("second join: %v", err)
	}
}

func TestIntroTable(t *testing.T) {
	s := newTestService(t, 2, 0, ServerOptions{})
	tab := NewIntroTable[*circ](1)
	b := [32]byte{1}
	c1, c2, c3 := &circ{"1"}, &circ{"2"}, &circ{"3"}
	if _, err := tab.Establish(c1, s.keys[0].EstablishIntro(b, 1, 2), b); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Establish(c2, s.keys[1].EstablishIntro(b, 0, 0), b); !errors.Is(err, ErrTableFull) {
		t.Fatalf("over the cap: %v", err)
	}
	if _, err := tab.Establish(c2, s.keys[0].EstablishIntro([32]byte{2}, 0, 0), b); !errors.Is(err, ErrAuth) {
		t.Fatalf("cell from another circuit: %v", err)
	}
	// The service asked for 1/s, burst 2.
	msg := func() []byte { c, _ := testClient(t, s, 0); return c.Message }
	for i := range 2 {
		if to, err := tab.Route(msg(), testNow); err != nil || to != c1 {
			t.Fatalf("introduce %d: %v, %v", i, to, err)
		}
	}
	if _, err := tab.Route(msg(), testNow); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third introduce: %v", err)
	}
	if _, err := tab.Route(msg()[1:], testNow); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short introduce: %v", err)
	}
	// The service rebuilds its circuit: the new one replaces the old.
	if _, err := tab.Establish(c3, s.keys[0].EstablishIntro(b, 0, 0), b); err != nil {
		t.Fatal(err)
	}
	if to, err := tab.Route(msg(), testNow); err != nil || to != c3 {
		t.Fatalf("after re-establish: %v, %v", to, err)
	}
	tab.Remove(c1) // the old circuit closing does not drop the new
	if tab.Len() != 1 {
		t.Fatalf("%d registrations", tab.Len())
	}
	tab.Remove(c3)
	if _, err := tab.Route(msg(), testNow); !errors.Is(err, ErrUnknownIntro) {
		t.Fatalf("after the circuit closed: %v", err)
	}
}

func TestRendezvousTable(t *testing.T) {
	tab := NewRendezvousTable[*circ](2, time.Minute)
	cookie := func() []byte { b := make([]byte, CookieLen); rand.Read(b); return b }
	r1 := func(ck []byte) []byte { return append(bytes.Clone(ck), make([]byte, 64)...) }
	a, b, c := &circ{"a"}, &circ{"b"}, &circ{"c"}
	ka, kb := cookie(), cookie()
	if err := tab.Establish(a, ka, testNow); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *circ
		msg  []byte
		want error
	}{
		{"same cookie", b, ka, ErrCookieInUse},
		{"second cookie on a circuit", a, kb, ErrCookieInUse},
		{"short", b, ka[1:], ErrMalformed},
	}
	for _, tt := range tests {
		if err := tab.Establish(tt.c, tt.msg, testNow); !errors.Is(err, tt.want) {
			t.Fatalf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := tab.Establish(b, kb, testNow); err != nil {
		t.Fatal(err)
	}
	if err := tab.Establish(c, cookie(), testNow); !errors.Is(err, ErrTableFull) {
		t.Fatalf("over the cap: %v", err)
	}
	if _, _, err := tab.Join(r1(cookie()), testNow); !errors.Is(err, ErrUnknownCookie) {
		t.Fatalf("unknown cookie: %v", err)
	}
	tab.Remove(b)
	if _, _, err := tab.Join(r1(kb), testNow); !errors.Is(err, ErrUnknownCookie) {
		t.Fatalf("cookie of a closed circuit: %v", err)
	}
	// Waiting circuits expire, and make room.
	later := testNow.Add(time.Minute + time.Second)
	if _, _, err := tab.Join(r1(ka), later); !errors.Is(err, ErrUnknownCookie) {
		t.Fatalf("expired cookie: %v", err)
	}
	if err := tab.Establish(c, cookie(), later); err != nil {
		t.Fatal(err)
	}
	if err := tab.Establish(b, ka, later); err != nil {
		t.Fatalf("reusing an expired cookie: %v", err)
	}
	tab.Remove(a) // a's expired entry is gone; b's new one stays
	if got, _, err := tab.Join(r1(ka), later); err != nil || got != b {
		t.Fatalf("join: %v, %v", got, err)
	}
}
