package proxy

import (
	"time"

	socks5 "github.com/armon/go-socks5"
)

// SetPoolClock replaces the pool's clock.
func SetPoolClock(p *Pool, now func() time.Time) {
	p.mu.Lock()
	p.now = now
	p.mu.Unlock()
}

// WrapSOCKSResolver wraps the resolver the SOCKS front end gives go-socks5.
func WrapSOCKSResolver(s *Server, wrap func(socks5.NameResolver) socks5.NameResolver) {
	s.socks.resolver = wrap(s.socks.resolver)
}
