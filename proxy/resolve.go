package proxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
)

// Resolver resolves at an exit relay, through a circuit of the isolation
// group, what SOCKS RESOLVE and RESOLVE_PTR ask (Tor's extensions). A Dialer
// that is also a Resolver serves them; otherwise they get "command not
// supported". The client's own resolver is never asked.
type Resolver interface {
	Resolve(ctx context.Context, isolationKey, name string) ([]netip.Addr, error)
	ResolvePTR(ctx context.Context, isolationKey string, ip netip.Addr) (string, error)
}

// The listeners, as the first part of an isolation key: streams from the
// SOCKS port and the HTTP port never share a circuit, with or without
// credentials (Tor never mixes listeners).
const (
	listenerSOCKS = "socks"
	listenerHTTP  = "http"
)

// isolationKey is the pool's key for a credential key on a listener.
func isolationKey(listener, cred string) string {
	return listener + "|" + cred
}

// SOCKSIsolationKey is the pool's isolation key of streams on the SOCKS
// port with this username and password; with no authentication at all
// pass auth false.
func SOCKSIsolationKey(auth bool, user, password string) string {
	if !auth {
		return isolationKey(listenerSOCKS, "")
	}
	return isolationKey(listenerSOCKS, credentialKey(user, password))
}

// HTTPIsolationKey is the pool's isolation key of requests on the HTTP
// port with this Proxy-Authorization header value ("" for none).
func HTTPIsolationKey(proxyAuthorization string) string {
	return isolationKey(listenerHTTP, proxyAuthKey(proxyAuthorization))
}

// IsolationKeyFor is the pool's isolation key of a proxy client that uses
// proxy ("socks" or "http") with this username and password, as the
// listener computes it (the HTTP credentials as Basic
// Proxy-Authorization); no username and no password is the listener's
// group without credentials.
func IsolationKeyFor(proxy, user, password string) (string, error) {
	auth := user != "" || password != ""
	switch proxy {
	case listenerSOCKS:
		return SOCKSIsolationKey(auth, user, password), nil
	case listenerHTTP:
		if !auth {
			return HTTPIsolationKey(""), nil
		}
		return HTTPIsolationKey("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))), nil
	}
	return "", fmt.Errorf("proxy %q: want %q or %q", proxy, listenerSOCKS, listenerHTTP)
}
