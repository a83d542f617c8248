package proxy

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// credentialKey is the isolation key of a username and password. The length
// prefix keeps ("a", "bc") and ("ab", "c") apart.
func credentialKey(user, password string) string {
	return "up:" + strconv.Itoa(len(user)) + ":" + user + password
}

// proxyAuthKey is the isolation key of a Proxy-Authorization header value:
// Basic credentials give the same key as the same username and password on
// the SOCKS port; any other value isolates on its exact text; no header is
// the default group "".
func proxyAuthKey(v string) string {
	if v == "" {
		return ""
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if ok && strings.EqualFold(scheme, "Basic") {
		if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
			user, password, _ := strings.Cut(string(dec), ":")
			return credentialKey(user, password)
		}
	}
	return "raw:" + v
}

// splitDest splits a host:port destination and checks it: the host is an IP
// literal or a name of at most 255 printable ASCII bytes without spaces, and
// the port is a number below 65536.
func splitDest(addr string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", errBadDestination, err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%w: port: %w", errBadDestination, err)
	}
	if len(host) == 0 || len(host) > 255 {
		return "", 0, fmt.Errorf("%w: host length %d", errBadDestination, len(host))
	}
	for i := 0; i < len(host); i++ {
		if host[i] <= ' ' || host[i] >= 0x7f {
			return "", 0, fmt.Errorf("%w: host has byte %#x", errBadDestination, host[i])
		}
	}
	return host, uint16(port), nil
}
