package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

// testClient opens s's descriptor and introduces itself through intro
// point i, asking to meet at a fresh rendezvous point.
func testClient(t testing.TB, s *testService, i int) (*ClientIntroduction, RendezvousPoint) {
	t.Helper()
	d, err := OpenDescriptor(s.seal(t, s.desc), s.id.Address(), s.desc.Period, nil)
	if err != nil {
		t.Fatal(err)
	}
	rp := RendezvousPoint{Relay: testPeer(t)}
	if _, err := rand.Read(rp.OnionKey[:]); err != nil {
		t.Fatal(err)
	}
	c, err := Introduce(context.Background(), rand.Reader, s.id.Address(), d, d.IntroPoints[i], rp, s.clock.t)
	if err != nil {
		t.Fatal(err)
	}
	return c, rp
}

func TestRendezvousHandshake(t *testing.T) {
	for _, pow := range []uint8{0, 10} {
		s := newTestService(t, 3, pow, ServerOptions{})
		c, rp := testClient(t, s, 1)
		if len(c.Message) != IntroduceLen {
			t.Fatalf("introduce of %d bytes, want %d", len(c.Message), IntroduceLen)
		}
		a, err := s.srv.Accept(c.Message)
		if err != nil {
			t.Fatalf("pow %d: Accept: %v", pow, err)
		}
		if a.Rendezvous != rp || a.Cookie != c.Cookie || a.AuthKey != s.desc.IntroPoints[1].AuthKey {
			t.Fatalf("service read %+v, client sent %+v cookie %x", a.Introduction, rp, c.Cookie)
		}
		if !a.Time.Equal(testNow) {
			t.Fatalf("time %s", a.Time)
		}
		cookie, r2, err := ParseRendezvous1(a.Rendezvous1)
		if err != nil || cookie != c.Cookie {
			t.Fatalf("rendezvous1: cookie %x, %v", cookie, err)
		}
		keys, err := c.Finish(r2)
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if keys != a.Keys {
			t.Fatal("client and service derived different keys")
		}
		if keys.Kf == keys.Kb || keys.Df == keys.Db || keys.Kf == ([32]byte{}) {
			t.Fatal("degenerate keys")
		}
	}
}

// TestIntroduceObservers checks what the intro point and the rendezvous
// relay see: nothing of the client (its rendezvous relay, cookie), nothing
// of the service (address, keys) at the rendezvous relay, and nothing that
// repeats between two introductions of one client.
func TestIntroduceObservers(t *testing.T) {
	s := newTestService(t, 2, 0, ServerOptions{})
	c, rp := testClient(t, s, 0)
	c2, _ := testClient(t, s, 0)
	h, err := ParseIntroduce1(c.Message)
	if err != nil {
		t.Fatal(err)
	}
	if h.AuthKey != s.desc.IntroPoints[0].AuthKey {
		t.Fatal("intro point cannot route the introduce")
	}
	a, err := s.srv.Accept(c.Message)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.id.Address()
	blinded := addr.Blind(s.desc.Period)
	ip := s.desc.IntroPoints[0]
	introView := map[string][]byte{
		"rendezvous relay":    []byte(rp.Relay),
		"rendezvous relay id": []byte(rp.Relay.String()),
		"rendezvous key":      rp.OnionKey[:],
		"cookie":              c.Cookie[:],
		"address":             addr[:],
		"blinded key":         blinded[:],
	}
	for name, sec := range introView {
		if bytes.Contains(c.Message, sec) {
			t.Errorf("the intro point sees the %s", name)
		}
	}
	if h2, _ := ParseIntroduce1(c2.Message); h2.X == h.X {
		t.Error("two introductions share the client's key")
	}
	rendView := map[string][]byte{
		"address":       addr[:],
		"address text":  []byte(addr.String()),
		"blinded key":   blinded[:],
		"intro relay":   []byte(ip.Relay),
		"intro auth":    ip.AuthKey[:],
		"intro enc":     ip.EncKey[:],
		"client key":    h.X[:],
		"introduce":     c.Message[introHeaderLen+2 : introHeaderLen+18],
		"pow seed":      s.desc.PoW.Seed[:],
		"stream key Kf": a.Keys.Kf[:],
	}
	for name, sec := range rendView {
		if bytes.Contains(a.Rendezvous1, sec) {
			t.Errorf("the rendezvous relay sees the %s", name)
		}
	}
}

func TestAcceptErrors(t *testing.T) {
	s := newTestService(t, 2, 0, ServerOptions{})
	fresh := func() []byte { c, _ := testClient(t, s, 0); return c.Message }
	tamper := func(off int) []byte {
		m := fresh()
		m[off] ^= 1
		return m
	}
	replayed := fresh()
	if _, err := s.srv.Accept(replayed); err != nil {
		t.Fatal(err)
	}
	unknown := fresh()
	unknown[1] ^= 1
	other := newTestService(t, 1, 0, ServerOptions{})
	strangerMsg, _ := testClient(t, other, 0)
	// A client that knows the intro point but not the address (wrong
	// subcredential) cannot get through.
	wrongAddr := func() []byte {
		d, err := OpenDescriptor(s.seal(t, s.desc), s.id.Address(), s.desc.Period, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Introduce(context.Background(), rand.Reader, other.id.Address(), d, d.IntroPoints[0], RendezvousPoint{Relay: testPeer(t)}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return c.Message
	}()
	// An intro point (or anyone) moving an INTRODUCE1 to another intro
	// point of the service.
	moved := fresh()
	copy(moved[1:33], s.desc.IntroPoints[1].AuthKey[:])
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"replay", replayed, ErrReplay},
		{"moved to another intro point", moved, ErrDecrypt},
		{"unknown intro point", unknown, ErrUnknownIntro},
		{"other service's intro point", strangerMsg.Message, ErrUnknownIntro},
		{"tampered key", tamper(33), ErrDecrypt},
		{"tampered nonce", tamper(66), ErrDecrypt},
		{"tampered body", tamper(IntroduceLen - 40), ErrDecrypt},
		{"tampered tag", tamper(IntroduceLen - 1), ErrDecrypt},
		{"wrong address", wrongAddr, ErrDecrypt},
		{"version", tamper(0), ErrMalformed},
		{"short", fresh()[:IntroduceLen-1], ErrMalformed},
		{"empty", nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.srv.Accept(tt.msg); !errors.Is(err, tt.want) {
				t.Fatalf("Accept: %v, want %v", err, tt.want)
			}
		})
	}
	s.srv.RemoveIntroPoint(s.desc.IntroPoints[0].AuthKey)
	if _, err := s.srv.Accept(fresh()); !errors.Is(err, ErrUnknownIntro) {
		t.Fatalf("after RemoveIntroPoint: %v", err)
	}
}

func TestAcceptTimeWindow(t *testing.T) {
	s := newTestService(t, 1, 0, ServerOptions{ReplayWindow: time.Minute, ReplayEntries: 4})
	c, _ := testClient(t, s, 0)
	for _, skew := range []time.Duration{-2 * time.Minute, 2 * time.Minute} {
		s.clock.t = testNow.Add(skew)
		if _, err := s.srv.Accept(c.Message); !errors.Is(err, ErrReplay) {
			t.Fatalf("clock %s off: %v, want ErrReplay", skew, err)
		}
	}
	s.clock.t = testNow.Add(30 * time.Second)
	if _, err := s.srv.Accept(c.Message); err != nil {
		t.Fatalf("within the window: %v", err)
	}
	// The cache is full of live entries: refuse rather than forget.
	for range 3 {
		c, _ := testClient(t, s, 0)
		if _, err := s.srv.Accept(c.Message); err != nil {
			t.Fatal(err)
		}
	}
	c, _ = testClient(t, s, 0)
	if _, err := s.srv.Accept(c.Message); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("replay cache full: %v, want ErrRateLimited", err)
	}
	// Entries age out after twice the window.
	s.clock.t = testNow.Add(30*time.Second + 2*time.Minute + time.Second)
	c, _ = testClient(t, s, 0)
	if _, err := s.srv.Accept(c.Message); err != nil {
		t.Fatalf("after the cache aged: %v", err)
	}
}

func TestRendezvous2Errors(t *testing.T) {
	s := newTestService(t, 1, 0, ServerOptions{})
	c, _ := testClient(t, s, 0)
	other, _ := testClient(t, s, 0)
	a, err := s.srv.Accept(other.Message)
	if err != nil {
		t.Fatal(err)
	}
	_, otherReply, _ := ParseRendezvous1(a.Rendezvous1)
	random := make([]byte, Rendezvous2Len)
	rand.Read(random)
	tests := []struct {
		name string
		r2   []byte
		want error
	}{
		{"another client's reply", otherReply, ErrAuth},
		{"random", random, ErrAuth},
		{"zero key", make([]byte, Rendezvous2Len), ErrAuth},
		{"short", otherReply[:Rendezvous2Len-1], ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Finish(tt.r2); !errors.Is(err, tt.want) {
				t.Fatalf("Finish: %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, err := ParseRendezvous1(a.Rendezvous1[1:]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short rendezvous1: %v", err)
	}
}

func TestEstablishIntro(t *testing.T) {
	k, err := NewIntroKeys(rand.Reader, testPeer(t))
	if err != nil {
		t.Fatal(err)
	}
	binding := [32]byte{7}
	msg := k.EstablishIntro(binding, 25, 200)
	e, err := ParseEstablishIntro(msg, binding)
	if err != nil || e.AuthKey != k.Point().AuthKey || e.Rate != 25 || e.Burst != 200 {
		t.Fatalf("ParseEstablishIntro = %+v, %v", e, err)
	}
	tampered := bytes.Clone(msg)
	tampered[34] ^= 1
	tests := []struct {
		name    string
		msg     []byte
		binding [32]byte
		want    error
	}{
		{"another circuit", msg, [32]byte{8}, ErrAuth},
		{"tampered rate", tampered, binding, ErrBadSignature},
		{"short", msg[1:], binding, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseEstablishIntro(tt.msg, tt.binding); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestAcceptAcrossPeriods: around a turnover an intro point is in the
// descriptors of two periods, and clients holding either get through; a
// third period retires the oldest.
func TestAcceptAcrossPeriods(t *testing.T) {
	s := newTestService(t, 1, 0, ServerOptions{})
	p := s.desc.Period
	k := s.keys[0]
	pows := map[Period]PoWParams{p: s.desc.PoW, p.Next(): {Difficulty: 4, Seed: [32]byte{4}}, p.Next().Next(): {}}
	introduceFor := func(p Period) []byte {
		d := *s.desc
		d.Period, d.PoW = p, pows[p]
		got, err := OpenDescriptor(s.seal(t, &d), s.id.Address(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Introduce(context.Background(), rand.Reader, s.id.Address(), got, got.IntroPoints[0], RendezvousPoint{Relay: testPeer(t)}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return c.Message
	}
	s.srv.AddIntroPoint(k, p.Next(), pows[p.Next()])
	for _, q := range []Period{p, p.Next()} {
		if _, err := s.srv.Accept(introduceFor(q)); err != nil {
			t.Fatalf("client with the descriptor of %s: %v", q, err)
		}
	}
	s.srv.AddIntroPoint(k, p.Next().Next(), pows[p.Next().Next()])
	if _, err := s.srv.Accept(introduceFor(p)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("client with a retired period's descriptor: %v, want ErrDecrypt", err)
	}
	if _, err := s.srv.Accept(introduceFor(p.Next())); err != nil {
		t.Fatalf("client with the previous period's descriptor: %v", err)
	}
}

// BenchmarkClientIntroduce is a client's cost of a first connection's
// cryptography: open the descriptor, build INTRODUCE1, check RENDEZVOUS2.
func BenchmarkClientIntroduce(b *testing.B) {
	s := newTestService(b, 3, 0, ServerOptions{IntroRate: 1e9, IntroBurst: 1 << 30, ReplayEntries: 1 << 30})
	raw := s.seal(b, s.desc)
	rp := RendezvousPoint{Relay: testPeer(b)}
	b.ReportAllocs()
	var serverTime time.Duration
	for i := 0; i < b.N; i++ {
		d, err := OpenDescriptor(raw, s.id.Address(), s.desc.Period, nil)
		if err != nil {
			b.Fatal(err)
		}
		c, err := Introduce(context.Background(), rand.Reader, s.id.Address(), d, d.IntroPoints[0], rp, testNow)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		start := time.Now()
		a, err := s.srv.Accept(c.Message)
		serverTime += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		_, r2, _ := ParseRendezvous1(a.Rendezvous1)
		b.StartTimer()
		if _, err := c.Finish(r2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(serverTime.Microseconds())/float64(b.N), "service-µs/op")
}
