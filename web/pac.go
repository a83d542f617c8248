package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
)

// pacContentType is the media type browsers expect for a proxy
// auto-config file.
const pacContentType = "application/x-ns-proxy-autoconfig"

// servePAC answers a proxy auto-config file that sends every URL to the
// client's SOCKS port, with no DIRECT fallback: when the node is down the
// browser fails instead of going around it. 404 when the node has no
// SOCKS port.
func (h *handler) servePAC(w http.ResponseWriter, r *http.Request) {
	s := h.src.Status(false)
	if s.Client == nil || s.Client.SOCKS == "" {
		http.NotFound(w, r)
		return
	}
	addr, ok := pacAddr(s.Client.SOCKS)
	if !ok {
		h.log.WithField("socks", s.Client.SOCKS).Debug("proxy.pac: SOCKS address is not host:port")
		http.NotFound(w, r)
		return
	}
	body := pacScript(addr)
	w.Header().Set("Content-Type", pacContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

// pacAddr is the address a browser on this machine reaches the SOCKS
// listener at: an unspecified listen address (0.0.0.0, ::) becomes the
// loopback of its family. Only IP addresses and the name localhost pass,
// so the result is safe inside a JavaScript string.
func pacAddr(listen string) (string, bool) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || !validPort(port) || port == "0" {
		return "", false
	}
	if asciiLower(host) == "localhost" {
		return net.JoinHostPort("localhost", port), true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return "", false
	}
	if a.IsUnspecified() {
		if a.Is4() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			a = netip.IPv6Loopback()
		}
	}
	return net.JoinHostPort(a.String(), port), true
}

func pacScript(addr string) string {
	return fmt.Sprintf(`// pikcio: every request goes through the local SOCKS5 proxy, and nothing
// goes direct, so that nothing leaks while pikcio is down.
function FindProxyForURL(url, host) {
  return "SOCKS5 %[1]s";
}
`, addr)
}
