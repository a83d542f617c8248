package proxy

import (
	"context"
	"errors"
	"net/http"
	"os"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/service"
)

// Errors of the pool and the front ends.
var (
	ErrClosed          = errors.New("proxy closed")
	ErrTooManyCircuits = errors.New("too many circuits")
	ErrNoCircuit       = errors.New("no usable circuit")
	errBadDestination  = errors.New("bad destination address")
	errNoResolve       = errors.New("the circuit cannot resolve")
)

// failure is the class of a failed dial as a client is told about it.
type failure int

const (
	failGeneral failure = iota
	failPolicy
	failUnreachable
	failRefused
	failTimeout
	failUnknownName   // a .pikcio name that is no address and no contact
	failNotAuthorized // a contacts-only service that does not list us
	failService       // a .pikcio service that could not be reached
)

func classify(err error) failure {
	switch {
	case errors.Is(err, service.ErrUnknownName), errors.Is(err, errNoServices):
		return failUnknownName
	case errors.Is(err, service.ErrNotAuthorized):
		return failNotAuthorized
	case errors.Is(err, service.ErrUnreachable):
		return failService
	case errors.Is(err, endreason.ErrPolicy):
		return failPolicy
	case errors.Is(err, endreason.ErrUnreachable), errors.Is(err, endreason.ErrResolve),
		errors.Is(err, errBadDestination):
		return failUnreachable
	case errors.Is(err, endreason.ErrRefused):
		return failRefused
	case errors.Is(err, endreason.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded):
		return failTimeout
	}
	return failGeneral
}

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	socksGeneralFailure  byte = 0x01
	socksNotAllowed      byte = 0x02
	socksHostUnreachable byte = 0x04
	socksConnRefused     byte = 0x05
	socksTTLExpired      byte = 0x06
	// BIND, UDP ASSOCIATE and unknown commands.
	socksCmdNotSupported  byte = 0x07
	socksAddrNotSupported byte = 0x08
)

// socksReply is the SOCKS5 reply code for a failed dial.
func socksReply(err error) byte {
	switch classify(err) {
	case failPolicy:
		return socksNotAllowed
	case failUnreachable:
		return socksHostUnreachable
	case failRefused:
		return socksConnRefused
	case failTimeout:
		return socksTTLExpired
	case failUnknownName, failService:
		return socksHostUnreachable
	case failNotAuthorized:
		return socksNotAllowed
	}
	return socksGeneralFailure
}

// httpFailure is the status and the short plain-text body the HTTP proxy
// sends for a failed dial. It never includes error text.
func httpFailure(err error) (int, string) {
	switch classify(err) {
	case failPolicy:
		return http.StatusBadGateway, "502 Bad Gateway: the exit relay's policy does not allow this destination.\n"
	case failUnreachable:
		return http.StatusBadGateway, "502 Bad Gateway: destination unreachable or name not resolved.\n"
	case failRefused:
		return http.StatusBadGateway, "502 Bad Gateway: the destination refused the connection.\n"
	case failTimeout:
		return http.StatusGatewayTimeout, "504 Gateway Timeout: connecting to the destination timed out.\n"
	case failUnknownName:
		return http.StatusBadGateway, "502 Bad Gateway: unknown .pikcio name: neither a service address nor the name of a service this node knows.\n"
	case failNotAuthorized:
		return http.StatusForbidden, "403 Forbidden: this .pikcio service is for its owner's contacts only.\n"
	case failService:
		return http.StatusBadGateway, "502 Bad Gateway: the .pikcio service could not be reached (offline, or its introduction points failed).\n"
	}
	return http.StatusBadGateway, "502 Bad Gateway: could not connect through the circuit.\n"
}
