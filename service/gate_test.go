package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	g := NewGate(2, 3)
	a, b := [32]byte{1}, [32]byte{2}
	for i := range 3 {
		if err := g.Allow(a, testNow); err != nil {
			t.Fatalf("burst token %d: %v", i, err)
		}
	}
	if err := g.Allow(a, testNow); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("past the burst: %v", err)
	}
	if err := g.Allow(b, testNow); err != nil {
		t.Fatalf("another intro point is limited by the first: %v", err)
	}
	if err := g.Allow(a, testNow.Add(500*time.Millisecond)); err != nil {
		t.Fatalf("after one token's time at 2/s: %v", err)
	}
	if err := g.Allow(a, testNow.Add(500*time.Millisecond)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second token in the same half second: %v", err)
	}
	g.Forget(a)
	if err := g.Allow(a, testNow.Add(500*time.Millisecond)); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
}

// TestAcceptRateLimit: the service's gate refuses a flood through one
// intro point before doing any public-key work, and lets the others be.
func TestAcceptRateLimit(t *testing.T) {
	s := newTestService(t, 2, 0, ServerOptions{IntroRate: 1, IntroBurst: 2})
	for i := range 2 {
		c, _ := testClient(t, s, 0)
		if _, err := s.srv.Accept(c.Message); err != nil {
			t.Fatalf("introduce %d: %v", i, err)
		}
	}
	c, _ := testClient(t, s, 0)
	if _, err := s.srv.Accept(c.Message); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third introduce: %v, want ErrRateLimited", err)
	}
	c1, _ := testClient(t, s, 1)
	if _, err := s.srv.Accept(c1.Message); err != nil {
		t.Fatalf("other intro point: %v", err)
	}
	s.clock.t = s.clock.t.Add(time.Second)
	if _, err := s.srv.Accept(c.Message); err != nil {
		t.Fatalf("a second later: %v", err)
	}
}

func TestPoW(t *testing.T) {
	p := PoWParams{Difficulty: 12}
	rand.Read(p.Seed[:])
	auth, x := [32]byte{1}, [32]byte{2}
	n, err := SolvePoW(context.Background(), p, auth, x)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPoW(p, auth, x, n) {
		t.Fatal("solution does not check")
	}
	if h := powHash(p, auth, x, n); leadingZeros(h) < 12 {
		t.Fatalf("hash %x has %d leading zero bits", h, leadingZeros(h))
	}
	// The work is bound to seed, intro point and client key.
	other := p
	other.Seed[0] ^= 1
	bound := 0
	for _, ok := range []bool{CheckPoW(other, auth, x, n), CheckPoW(p, [32]byte{9}, x, n), CheckPoW(p, auth, [32]byte{9}, n)} {
		if !ok {
			bound++
		}
	}
	if bound < 2 { // each holds by chance with probability 2^-12
		t.Fatalf("solution transfers to other inputs (%d of 3 refused)", bound)
	}
	if !CheckPoW(PoWParams{}, auth, x, [8]byte{}) {
		t.Fatal("difficulty 0 refuses")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SolvePoW(ctx, PoWParams{Difficulty: 32}, auth, x); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled solve: %v", err)
	}
	if _, err := SolvePoW(context.Background(), PoWParams{Difficulty: MaxPoWDifficulty + 1}, auth, x); !errors.Is(err, ErrPoW) {
		t.Fatalf("difficulty over the cap: %v", err)
	}
	if got := leadingZeros([32]byte{}); got != 256 {
		t.Fatalf("leadingZeros(0) = %d", got)
	}
	if got := leadingZeros([32]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x10}); got != 67 {
		t.Fatalf("leadingZeros = %d, want 67", got)
	}
}

// TestAcceptPoW: a client that skips the puzzle is refused; one that
// solves it is let in.
func TestAcceptPoW(t *testing.T) {
	s := newTestService(t, 1, 14, ServerOptions{})
	d, err := OpenDescriptor(s.seal(t, s.desc), s.id.Address(), s.desc.Period, nil)
	if err != nil {
		t.Fatal(err)
	}
	lazy := *d
	lazy.PoW.Difficulty = 0
	rp := RendezvousPoint{Relay: testPeer(t)}
	c, err := Introduce(context.Background(), rand.Reader, s.id.Address(), &lazy, d.IntroPoints[0], rp, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.srv.Accept(c.Message); !errors.Is(err, ErrPoW) {
		t.Fatalf("no work: %v, want ErrPoW", err)
	}
	c, err = Introduce(context.Background(), rand.Reader, s.id.Address(), d, d.IntroPoints[0], rp, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.srv.Accept(c.Message); err != nil {
		t.Fatalf("with work: %v", err)
	}
}

// BenchmarkSolvePoW prints the client's cost of a puzzle per difficulty:
// time per solve, hashes per solve and the hash rate.
func BenchmarkSolvePoW(b *testing.B) {
	for _, d := range []uint8{8, 12, 16} {
		b.Run(fmt.Sprintf("difficulty=%d", d), func(b *testing.B) {
			b.ReportAllocs()
			p := PoWParams{Difficulty: d}
			var x [32]byte
			hashes := 0.0
			start := time.Now()
			for i := 0; i < b.N; i++ {
				binary.BigEndian.PutUint64(x[:], uint64(i))
				n, err := SolvePoW(context.Background(), p, [32]byte{1}, x)
				if err != nil {
					b.Fatal(err)
				}
				hashes += float64(binary.BigEndian.Uint64(n[:]) + 1)
			}
			b.ReportMetric(hashes/float64(b.N), "hashes/solve")
			b.ReportMetric(hashes/time.Since(start).Seconds()/1e6, "Mhash/s")
		})
	}
}

// BenchmarkAccept is the service's cost of one INTRODUCE (two X25519,
// one ephemeral key, HKDF, AES-GCM).
func BenchmarkAccept(b *testing.B) {
	s := newTestService(b, 1, 0, ServerOptions{IntroRate: 1e9, IntroBurst: 1 << 30, ReplayEntries: 1 << 30})
	msgs := make([][]byte, b.N)
	for i := range msgs {
		c, _ := testClient(b, s, 0)
		msgs[i] = c.Message
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.srv.Accept(msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
