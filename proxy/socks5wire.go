package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// SOCKS5 wire constants (RFC 1928, RFC 1929, and Tor's socks-extensions.txt
// for RESOLVE and RESOLVE_PTR).
const (
	socksVersion     byte = 5
	socksAuthNone    byte = 0x00
	socksAuthUser    byte = 0x02
	socksAuthNoMatch byte = 0xff
	socksUserVersion byte = 1

	socksCmdConnect    byte = 0x01
	socksCmdResolve    byte = 0xf0
	socksCmdResolvePTR byte = 0xf1

	socksAtypIPv4 byte = 1
	socksAtypName byte = 3
	socksAtypIPv6 byte = 4
)

// errNoAnswer: a resolution gave no usable answer.
var errNoAnswer = errors.New("no answer")

// requestError is a request the server answers with a failure reply.
type requestError struct {
	code byte
	msg  string
}

func (e *requestError) Error() string { return fmt.Sprintf("%s (reply %#02x)", e.msg, e.code) }

// socksRequest is a parsed SOCKS5 request. host is a name as sent or an IP
// literal's text.
type socksRequest struct {
	cmd  byte
	host string
	port uint16
}

// negotiate reads the method greeting and, if chosen, the RFC 1929
// username/password, and answers both. It returns the isolation credential:
// "" without authentication, else credentialKey(user, password). It chooses
// username/password whenever the client offers it.
func negotiate(w io.Writer, r *bufio.Reader) (string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	if hdr[0] != socksVersion {
		return "", fmt.Errorf("greeting version %d", hdr[0])
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return "", fmt.Errorf("read methods: %w", err)
	}
	method := socksAuthNoMatch
	switch {
	case containsByte(methods, socksAuthUser):
		method = socksAuthUser
	case containsByte(methods, socksAuthNone):
		method = socksAuthNone
	}
	if _, err := w.Write([]byte{socksVersion, method}); err != nil {
		return "", fmt.Errorf("write method selection: %w", err)
	}
	switch method {
	case socksAuthNone:
		return "", nil
	case socksAuthNoMatch:
		return "", errors.New("no acceptable authentication method")
	}
	user, pass, err := readUserPass(r)
	if err != nil {
		_, _ = w.Write([]byte{socksUserVersion, 1})
		return "", err
	}
	if _, err := w.Write([]byte{socksUserVersion, 0}); err != nil {
		return "", fmt.Errorf("write auth reply: %w", err)
	}
	return credentialKey(user, pass), nil
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// readUserPass reads an RFC 1929 request: VER ULEN UNAME PLEN PASSWD.
func readUserPass(r io.Reader) (string, string, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", fmt.Errorf("read auth: %w", err)
	}
	if b[0] != socksUserVersion {
		return "", "", fmt.Errorf("auth version %d", b[0])
	}
	user := make([]byte, b[1])
	if _, err := io.ReadFull(r, user); err != nil {
		return "", "", fmt.Errorf("read username: %w", err)
	}
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return "", "", fmt.Errorf("read password length: %w", err)
	}
	pass := make([]byte, b[0])
	if _, err := io.ReadFull(r, pass); err != nil {
		return "", "", fmt.Errorf("read password: %w", err)
	}
	return string(user), string(pass), nil
}

// readRequest reads VER CMD RSV ATYP DST.ADDR DST.PORT. A request the server
// must refuse with a reply is a *requestError; a short read is another error
// (no reply). RESOLVE takes a name and RESOLVE_PTR an address, as in Tor.
func readRequest(r io.Reader) (socksRequest, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return socksRequest{}, fmt.Errorf("read request: %w", err)
	}
	if hdr[0] != socksVersion {
		return socksRequest{}, &requestError{socksGeneralFailure, fmt.Sprintf("request version %d", hdr[0])}
	}
	req := socksRequest{cmd: hdr[1]}
	switch hdr[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := 4
		if hdr[3] == socksAtypIPv6 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return socksRequest{}, fmt.Errorf("read address: %w", err)
		}
		ip, _ := netip.AddrFromSlice(b)
		req.host = ip.String()
	case socksAtypName:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return socksRequest{}, fmt.Errorf("read name length: %w", err)
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return socksRequest{}, fmt.Errorf("read name: %w", err)
		}
		req.host = string(b)
	default:
		return socksRequest{}, &requestError{socksAddrNotSupported, fmt.Sprintf("address type %d", hdr[3])}
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return socksRequest{}, fmt.Errorf("read port: %w", err)
	}
	req.port = uint16(p[0])<<8 | uint16(p[1])
	switch req.cmd {
	case socksCmdConnect:
	case socksCmdResolve:
		if hdr[3] != socksAtypName {
			return socksRequest{}, &requestError{socksAddrNotSupported, "RESOLVE of an address"}
		}
	case socksCmdResolvePTR:
		if hdr[3] == socksAtypName {
			return socksRequest{}, &requestError{socksAddrNotSupported, "RESOLVE_PTR of a name"}
		}
	default:
		return socksRequest{}, &requestError{socksCmdNotSupported, fmt.Sprintf("command %#02x", req.cmd)}
	}
	return req, nil
}

// reply is a SOCKS5 reply with code rep. addr is ATYP and address; nil means
// 0.0.0.0. The port is always 0.
func reply(rep byte, addr []byte) []byte {
	if addr == nil {
		addr = []byte{socksAtypIPv4, 0, 0, 0, 0}
	}
	b := make([]byte, 0, 5+len(addr))
	b = append(b, socksVersion, rep, 0)
	b = append(b, addr...)
	return append(b, 0, 0)
}

// addrAnswer is the ATYP and address of ip.
func addrAnswer(ip netip.Addr) []byte {
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		return append([]byte{socksAtypIPv4}, a[:]...)
	}
	a := ip.As16()
	return append([]byte{socksAtypIPv6}, a[:]...)
}
