package tis

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a client address, a mail
// domain), forgetting keys idle for long enough to be full again. It holds
// at most maxKeys; past that a new key shares one overflow bucket, so a
// flood of addresses cannot grow memory nor escape the limit.
type keyedLimiter struct {
	rate    rate.Limit
	burst   int
	maxKeys int

	mu       sync.Mutex
	m        map[string]*keyedBucket
	overflow *rate.Limiter
	swept    time.Time
}

type keyedBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newKeyedLimiter(r float64, burst, maxKeys int) *keyedLimiter {
	return &keyedLimiter{rate: rate.Limit(r), burst: burst, maxKeys: maxKeys, m: map[string]*keyedBucket{},
		overflow: rate.NewLimiter(rate.Limit(r), burst)}
}

// allow takes a token of key at now.
func (k *keyedLimiter) allow(key string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	// A bucket idle for burst/rate is full: forget it.
	idle := time.Duration(float64(k.burst) / float64(k.rate) * float64(time.Second))
	if now.Sub(k.swept) > idle {
		for key, b := range k.m {
			if now.Sub(b.last) > idle {
				delete(k.m, key)
			}
		}
		k.swept = now
	}
	b, ok := k.m[key]
	if !ok {
		if len(k.m) >= k.maxKeys {
			return k.overflow.AllowN(now, 1)
		}
		b = &keyedBucket{lim: rate.NewLimiter(k.rate, k.burst)}
		k.m[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// clientAddr is the address a request came from: the peer's address, or,
// when the peer is a trusted reverse proxy, the last address in
// X-Forwarded-For that is not itself a trusted proxy. IPv6 addresses count
// per /64, as one host usually holds a whole /64.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = a.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// mailDomain is the domain part of a normalized e-mail address.
func mailDomain(email string) string {
	return email[strings.LastIndexByte(email, '@')+1:]
}
