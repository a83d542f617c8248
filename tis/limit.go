package tis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per key (a client address, a mail domain, ""
// for the global limit). Two kinds: keyedLimiter in the memory of one
// server (SQLite, one process), and sharedLimiter in a PostgreSQL store,
// which every server of that store takes from, so that N servers do not
// allow N times the limit.
type limiter interface {
	// allow takes a token of key at now; false when there is none.
	allow(ctx context.Context, key string, now time.Time) (bool, error)
}

// newLimiter returns the limiter of r a second and burst for the servers
// of store: shared in the database when the store is shared (PostgreSQL),
// else in memory. name tells the limits apart in the database.
func newLimiter(store Store, name string, r float64, burst, maxKeys int) limiter {
	if st, ok := store.(*sqlStore); ok && st.postgres {
		return &sharedLimiter{st: st, prefix: name + ":", rate: r, burst: burst, maxKeys: maxKeys}
	}
	return newKeyedLimiter(r, burst, maxKeys)
}

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

func (k *keyedLimiter) allow(_ context.Context, key string, now time.Time) (bool, error) {
	return k.take(key, now), nil
}

// take takes a token of key at now.
func (k *keyedLimiter) take(key string, now time.Time) bool {
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

// sharedLimiter keeps its buckets in the limits table of a PostgreSQL
// store: one row per key, taken from by one atomic statement (so two
// servers cannot both take the last token). Rows of buckets full again
// are deleted every limitSweepEvery; while the table holds maxKeys rows
// of this limiter, keys without a row share one overflow bucket, so a
// flood of addresses can neither grow the table nor escape the limit.
//
// A limiter with lease above 1 (the global one: one row every request
// would update, which serializes the servers on its lock) takes up to
// lease tokens at once and spends them within leaseTime: the limit still
// holds (every token spent was taken from the shared bucket), and other
// servers see at most lease tokens per server fewer than there are.
type sharedLimiter struct {
	st      *sqlStore
	prefix  string
	rate    float64
	burst   int
	maxKeys int
	lease   int

	mu       sync.Mutex // held by the one sweeping
	swept    time.Time
	overflow atomic.Bool

	stockMu sync.Mutex
	stock   int // leased tokens left
	stockAt time.Time
}

// globalLease and leaseTime bound the tokens a server leases from the
// global limit: at most a 25th of the burst, 16, for a second.
const (
	globalLease = 16
	leaseTime   = time.Second
)

// newGlobalLimiter is newLimiter for the limit of the one key "": on
// PostgreSQL each server leases tokens.
func newGlobalLimiter(store Store, name string, r float64, burst int) limiter {
	l := newLimiter(store, name, r, burst, maxLimiterKeys)
	if sl, ok := l.(*sharedLimiter); ok {
		sl.lease = min(globalLease, max(1, burst/25))
	}
	return l
}

// limitKey is a key of a limiter, and what the limit is for messages.
type limitKey struct {
	lim       limiter
	key, what string
}

// allowAll takes a token of each limit in order and refuses at the first
// that has none (ErrRateLimited), taking none from the limits after it:
// so one address's flood does not use up the global limit. When all are
// shared, in one statement at most.
func allowAll(ctx context.Context, now time.Time, ks ...limitKey) error {
	var st *sqlStore
	shared := true
	for _, k := range ks {
		sl, ok := k.lim.(*sharedLimiter)
		if !ok || (st != nil && sl.st != st) {
			shared = false
			break
		}
		st = sl.st
	}
	if !shared {
		for _, k := range ks {
			ok, err := k.lim.allow(ctx, k.key, now)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: %w", k.what, ErrRateLimited)
			}
		}
		return nil
	}
	// A leased token where there is one, else a take in the statement.
	local := make([]bool, len(ks))
	var takes []tokenTake
	var err error
	for i, k := range ks {
		sl := k.lim.(*sharedLimiter)
		if local[i] = sl.spendLeased(now); local[i] {
			continue
		}
		t, terr := sl.take(ctx, k.key, now)
		if terr != nil {
			err = terr
			break
		}
		takes = append(takes, t)
	}
	var taken []int
	if err == nil && len(takes) > 0 {
		taken, err = st.takeTokens(ctx, now, takes)
	}
	refused := -1
	for i, j := 0, 0; i < len(ks); i++ {
		sl := ks[i].lim.(*sharedLimiter)
		switch {
		case local[i] && (err != nil || refused >= 0):
			sl.returnLeased() // not spent: a limit before it refused
		case local[i]:
		case err != nil || refused >= 0:
		case taken[j] == 0:
			refused = i
		default:
			sl.addLeased(taken[j]-1, now)
		}
		if !local[i] {
			j++
		}
	}
	if err != nil {
		return err
	}
	if refused >= 0 {
		return fmt.Errorf("%s: %w", ks[refused].what, ErrRateLimited)
	}
	return nil
}

// limitSweepEvery is how often a server deletes the full buckets of a
// shared limiter and counts the others.
const limitSweepEvery = time.Minute

func (l *sharedLimiter) allow(ctx context.Context, key string, now time.Time) (bool, error) {
	err := allowAll(ctx, now, limitKey{l, key, l.prefix})
	if errors.Is(err, ErrRateLimited) {
		return false, nil
	}
	return err == nil, err
}

// spendLeased spends a leased token if one is left from the last
// leaseTime.
func (l *sharedLimiter) spendLeased(now time.Time) bool {
	l.stockMu.Lock()
	defer l.stockMu.Unlock()
	if l.stock > 0 && now.Sub(l.stockAt) < leaseTime && !now.Before(l.stockAt) {
		l.stock--
		return true
	}
	l.stock = 0
	return false
}

func (l *sharedLimiter) returnLeased() {
	l.stockMu.Lock()
	l.stock++
	l.stockMu.Unlock()
}

// addLeased keeps n more leased tokens, taken at now.
func (l *sharedLimiter) addLeased(n int, now time.Time) {
	if n <= 0 {
		return
	}
	l.stockMu.Lock()
	defer l.stockMu.Unlock()
	l.stock, l.stockAt = n, now
}

// take is the take for key: lease tokens (1 if not leasing) from its
// bucket, or from the overflow bucket when the table is full and key has
// no bucket.
func (l *sharedLimiter) take(ctx context.Context, key string, now time.Time) (tokenTake, error) {
	// A bucket idle for burst/rate is full: its row may go.
	t := tokenTake{key: l.prefix + key, n: max(1, l.lease), rate: l.rate, burst: l.burst,
		idle: time.Duration(float64(l.burst) / l.rate * float64(time.Second))}
	overflow, err := l.sweep(ctx, now)
	if err != nil || !overflow {
		return t, err
	}
	exists, err := l.st.limitExists(ctx, t.key)
	if err == nil && !exists {
		t.key = l.prefix + " overflow"
	}
	return t, err
}

// sweep deletes the full buckets and counts the others once every
// limitSweepEvery (one caller does; the others go on), and says whether
// the table is at maxKeys.
func (l *sharedLimiter) sweep(ctx context.Context, now time.Time) (bool, error) {
	if !l.mu.TryLock() {
		return l.overflow.Load(), nil
	}
	defer l.mu.Unlock()
	if now.Sub(l.swept) < limitSweepEvery && !now.Before(l.swept) {
		return l.overflow.Load(), nil
	}
	n, err := l.st.sweepLimits(ctx, l.prefix, now)
	if err != nil {
		return false, err
	}
	l.swept = now
	l.overflow.Store(n >= l.maxKeys)
	return n >= l.maxKeys, nil
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
