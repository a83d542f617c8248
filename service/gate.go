package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The proof of work is hashcash over SHA-256: a nonce is good for
// difficulty d when
//
//	SHA-256("pikcio-svc-pow-v1" | seed | AUTH_KEY | X | nonce)
//
// starts with d zero bits. The seed is in the descriptor's encrypted
// layer (only who can read the intro points can solve), AUTH_KEY ties the
// work to one intro point and X to one INTRODUCE, so work cannot be
// reused or precomputed before the descriptor is out. A client does 2^d
// hashes on average; the service checks with one hash, before any
// public-key work. d = 0 turns the puzzle off. On one core of the 2-core
// development machine SHA-256 runs at 3 to 7 million hashes a second
// (BenchmarkSolvePoW prints the figures of the machine it runs on), so
// d = 16 costs a client 10 to 20 ms, d = 20 a fifth of a second or so and
// d = 24 a few seconds, while the service's check stays one hash. A
// service under attack raises d in a new descriptor.
const powContext = "pikcio-svc-pow-v1"

func powHash(p PoWParams, authKey, x [32]byte, nonce [PoWNonceLen]byte) [32]byte {
	b := make([]byte, 0, len(powContext)+3*32+PoWNonceLen)
	b = append(b, powContext...)
	b = append(b, p.Seed[:]...)
	b = append(b, authKey[:]...)
	b = append(b, x[:]...)
	b = append(b, nonce[:]...)
	return sha256.Sum256(b)
}

func leadingZeros(h [32]byte) int {
	n := 0
	for i := 0; i < len(h); i += 8 {
		w := binary.BigEndian.Uint64(h[i:])
		n += bits.LeadingZeros64(w)
		if w != 0 {
			break
		}
	}
	return n
}

// CheckPoW reports whether nonce solves p's puzzle for this intro point
// and client key. With p.Difficulty 0 every nonce does.
func CheckPoW(p PoWParams, authKey, x [32]byte, nonce [PoWNonceLen]byte) bool {
	return p.Difficulty == 0 || leadingZeros(powHash(p, authKey, x, nonce)) >= int(p.Difficulty)
}

// SolvePoW finds a nonce for p's puzzle; with p.Difficulty 0 it returns
// the zero nonce at once. ctx ends the search.
func SolvePoW(ctx context.Context, p PoWParams, authKey, x [32]byte) ([PoWNonceLen]byte, error) {
	var nonce [PoWNonceLen]byte
	if p.Difficulty == 0 {
		return nonce, nil
	}
	if p.Difficulty > MaxPoWDifficulty {
		return nonce, fmt.Errorf("pow difficulty %d, cap %d: %w", p.Difficulty, MaxPoWDifficulty, ErrPoW)
	}
	for i := uint64(0); ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nonce, fmt.Errorf("solve pow of difficulty %d: %w", p.Difficulty, err)
			}
		}
		binary.BigEndian.PutUint64(nonce[:], i)
		if CheckPoW(p, authKey, x, nonce) {
			return nonce, nil
		}
	}
}

// Gate is the rate limit of INTRODUCE messages: a token bucket per
// introduction point (per intro auth key), all at one rate. A service
// keeps one in its Server; an intro point's IntroTable keeps a bucket per
// intro circuit at the rate the service asked for. Safe for concurrent use.
type Gate struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	b     map[[32]byte]*rate.Limiter
}

// NewGate makes a gate of perSecond INTRODUCE messages per intro point,
// burst at once (perSecond <= 0 or burst <= 0: DefaultIntroRate,
// DefaultIntroBurst).
func NewGate(perSecond float64, burst int) *Gate {
	if perSecond <= 0 {
		perSecond = DefaultIntroRate
	}
	if burst <= 0 {
		burst = DefaultIntroBurst
	}
	return &Gate{rate: rate.Limit(perSecond), burst: burst, b: make(map[[32]byte]*rate.Limiter)}
}

// Allow takes a token of authKey's bucket at now, or fails with
// ErrRateLimited. Callers Allow only keys they hold (Forget them when the
// intro point goes), so the map stays bounded.
func (g *Gate) Allow(authKey [32]byte, now time.Time) error {
	g.mu.Lock()
	l, ok := g.b[authKey]
	if !ok {
		l = rate.NewLimiter(g.rate, g.burst)
		g.b[authKey] = l
	}
	g.mu.Unlock()
	if !l.AllowN(now, 1) {
		return ErrRateLimited
	}
	return nil
}

// Forget drops authKey's bucket.
func (g *Gate) Forget(authKey [32]byte) {
	g.mu.Lock()
	delete(g.b, authKey)
	g.mu.Unlock()
}
