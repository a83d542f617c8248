package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pikcio/pikcio/service"
)

// Names under .pikcio (issue 17) are Matryoshka services: they never go
// to an exit or to DNS. Both front ends dial through one Dialer, which
// NewServer wraps so that such a name goes to ServerOptions.Services.

// ServiceDialer connects to a Matryoshka service by its .pikcio name
// (ADDRESS.pikcio or CONTACTNAME.pikcio). Its errors wrap
// service.ErrUnknownName, service.ErrNotAuthorized or
// service.ErrUnreachable where they apply.
type ServiceDialer interface {
	DialService(ctx context.Context, host string, port uint16) (net.Conn, error)
}

// errNoServices: a .pikcio name, and this node reaches no services.
var errNoServices = errors.New("this node does not reach .pikcio services")

// pikcioRouter sends .pikcio names to the services and the rest on.
type pikcioRouter struct {
	Dialer
	services ServiceDialer
}

func (p pikcioRouter) Dial(ctx context.Context, key, host string, port uint16) (net.Conn, error) {
	if !service.IsPikcioHost(host) {
		return p.Dialer.Dial(ctx, key, host, port)
	}
	if p.services == nil {
		return nil, fmt.Errorf("%s: %w", host, errNoServices)
	}
	return p.services.DialService(ctx, host, port)
}

// pikcioResolver is pikcioRouter over a Dialer that resolves: a .pikcio
// name has no IP address, and is not asked of the exit.
type pikcioResolver struct {
	pikcioRouter
	res Resolver
}

func (p pikcioResolver) Resolve(ctx context.Context, key, name string) ([]netip.Addr, error) {
	if service.IsPikcioHost(name) {
		return nil, fmt.Errorf("%s has no address to resolve: %w", name, service.ErrUnknownName)
	}
	return p.res.Resolve(ctx, key, name)
}

func (p pikcioResolver) ResolvePTR(ctx context.Context, key string, ip netip.Addr) (string, error) {
	return p.res.ResolvePTR(ctx, key, ip)
}

// routePikcio wraps d so that .pikcio names never reach it.
func routePikcio(d Dialer, services ServiceDialer) Dialer {
	r := pikcioRouter{Dialer: d, services: services}
	if res, ok := d.(Resolver); ok {
		return pikcioResolver{pikcioRouter: r, res: res}
	}
	return r
}
