package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
	"github.com/pikcio/pikcio/web"
)

// The control API (package control) of a node with client.control_listen
// set: the node as its Backend, and a watcher that turns changes of the
// pool and of the guards into events.

// controlWatch is how often the watcher compares the pool's circuits and
// the guards with what it saw before.
const controlWatch = 200 * time.Millisecond

// nodeControl is the running control API.
type nodeControl struct {
	srv  *control.Server
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startControl starts the control API when cfg asks for it; n.mu is held.
func (n *Node) startControl(listen string) error {
	if listen == "" {
		return nil
	}
	srv, err := control.Listen(listen, filepath.Join(n.dataDir, control.CookieFile), controlBackend{n}, controlIsolationKey)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	ctx, cancel := context.WithCancel(n.ctx)
	nc := &nodeControl{srv: srv, stop: cancel}
	nc.wg.Go(func() { n.watchForEvents(ctx, srv) })
	n.control = nc
	return nil
}

// ControlAddr is the control API's address, nil when it is off.
func (n *Node) ControlAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.control == nil {
		return ""
	}
	a := n.control.srv.Addr()
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

// closeControl stops the watcher and the server.
func (nc *nodeControl) close() error {
	if nc == nil {
		return nil
	}
	nc.stop()
	nc.wg.Wait()
	return nc.srv.Close()
}

// publish sends an event to the control API's streams, if it runs.
func (n *Node) publish(e control.Event) {
	n.mu.Lock()
	nc := n.control
	n.mu.Unlock()
	if nc != nil {
		nc.srv.Publish(e)
	}
}

// controlIsolationKey maps an Isolation to the pool's key, as the proxies
// compute it.
func controlIsolationKey(iso control.Isolation) (string, error) {
	auth := iso.Username != "" || iso.Password != ""
	switch iso.Proxy {
	case "socks":
		return proxy.SOCKSIsolationKey(auth, iso.Username, iso.Password), nil
	case "http":
		if !auth {
			return proxy.HTTPIsolationKey(""), nil
		}
		return proxy.HTTPIsolationKey("Basic " + base64.StdEncoding.EncodeToString([]byte(iso.Username+":"+iso.Password))), nil
	}
	return "", fmt.Errorf("proxy %q: want \"socks\" or \"http\"", iso.Proxy)
}

// watchForEvents publishes circuit_built and circuit_closed as the pool
// reports them, and circuit_failed and guards_changed by comparing the
// build failure counter and the guards every controlWatch.
func (n *Node) watchForEvents(ctx context.Context, srv *control.Server) {
	n.mu.Lock()
	pool := n.pool
	n.mu.Unlock()
	var failures uint64
	if pool != nil {
		pool.SetObserver(func(e proxy.PoolEvent) {
			if e.Built {
				srv.Publish(control.Event{Type: control.EventCircuitBuilt, Circuit: e.ID})
			} else {
				srv.Publish(control.Event{Type: control.EventCircuitClosed, Circuit: e.ID, Group: e.Group})
			}
		})
		defer pool.SetObserver(nil)
		failures = pool.Stats().BuildFailures
	}
	var guards string
	first := true
	t := time.NewTicker(controlWatch)
	defer t.Stop()
	for {
		if pool != nil {
			for st := pool.Stats(); failures < st.BuildFailures; failures++ {
				srv.Publish(control.Event{Type: control.EventCircuitFailed, Message: "circuit build failed"})
			}
		}
		var ids []string
		for _, g := range n.disc.Guards() {
			ids = append(ids, ShortID(g.ID))
		}
		if g := strings.Join(ids, ","); g != guards {
			if !first {
				srv.Publish(control.Event{Type: control.EventGuardsChanged, Guards: ids})
			}
			guards = g
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// controlBackend is the node as the control API's Backend.
type controlBackend struct{ n *Node }

var _ control.Backend = controlBackend{}

func (b controlBackend) Status() web.Status { return b.n.StatusWith(false) }

func (b controlBackend) NewIdentity() bool { return b.n.NewIdentity() }

func (b controlBackend) pool() (*proxy.Pool, error) {
	b.n.mu.Lock()
	defer b.n.mu.Unlock()
	if b.n.pool == nil {
		return nil, fmt.Errorf("%w: no client role", control.ErrUnavailable)
	}
	return b.n.pool, nil
}

func (b controlBackend) CircuitFor(key string) (*web.CircuitStatus, error) {
	p, err := b.pool()
	if err != nil {
		return nil, err
	}
	ci, ok := p.CircuitFor(key)
	if !ok {
		return nil, nil
	}
	st := b.n.StatusWith(false)
	if st.Client != nil {
		for _, c := range st.Client.Circuits {
			if c.ID == ci.ID {
				return &c, nil
			}
		}
	}
	return nil, nil
}

func (b controlBackend) NewCircuitFor(key string) (int, error) {
	p, err := b.pool()
	if err != nil {
		return 0, err
	}
	return p.NewCircuitFor(key), nil
}

func (b controlBackend) contacts() (*trust.Contacts, error) {
	if b.n.trust == nil {
		return nil, fmt.Errorf("%w: contacts need [tis]", control.ErrUnavailable)
	}
	return b.n.trust.Contacts(), nil
}

func contactOf(c trust.Contact) control.Contact {
	out := control.Contact{Name: c.Name, ID: c.ID.String(), Added: c.AddedAt}
	if c.Node != "" {
		out.Node = c.Node.String()
	}
	return out
}

func (b controlBackend) Contacts() ([]control.Contact, error) {
	cs, err := b.contacts()
	if err != nil {
		return nil, err
	}
	var out []control.Contact
	for _, c := range cs.List() {
		out = append(out, contactOf(c))
	}
	return out, nil
}

func (b controlBackend) Invite(name string, lifetime time.Duration) (control.Invite, error) {
	if _, err := b.contacts(); err != nil {
		return control.Invite{}, err
	}
	norm, err := tis.NormalizeName(name)
	if err != nil {
		return control.Invite{}, fmt.Errorf("%w: name: %w", control.ErrBadRequest, err)
	}
	if lifetime == 0 {
		lifetime = trust.DefaultInviteLifetime
	}
	if lifetime < 0 || lifetime > exchange.MaxLifetime {
		return control.Invite{}, fmt.Errorf("%w: lifetime %v: want more than 0 and at most %v", control.ErrBadRequest, lifetime, exchange.MaxLifetime)
	}
	var addrs []ma.Multiaddr
	for _, a := range b.n.Addrs() {
		if len(addrs) == trust.MaxInviteAddrs {
			break
		}
		addrs = append(addrs, a)
	}
	inv, err := exchange.CreateInvite(b.n.dataDir, addrs, norm, lifetime, time.Now())
	if errors.Is(err, exchange.ErrTooManyInvites) {
		return control.Invite{}, fmt.Errorf("%w: %w", control.ErrBadRequest, err)
	}
	if err != nil {
		return control.Invite{}, err
	}
	return control.Invite{Code: inv.String(), Expires: inv.Expires}, nil
}

func (b controlBackend) Accept(ctx context.Context, code, name string) (control.Contact, error) {
	cs, err := b.contacts()
	if err != nil {
		return control.Contact{}, err
	}
	norm, err := tis.NormalizeName(name)
	if err != nil {
		return control.Contact{}, fmt.Errorf("%w: name: %w", control.ErrBadRequest, err)
	}
	inv, err := trust.ParseInvite(code)
	if err != nil {
		return control.Contact{}, fmt.Errorf("%w: not an invite code: %w", control.ErrBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := exchange.Accept(ctx, b.n.host, inv, b.n.exchangeSelf(), b.n.tis.Root(), cs, norm)
	if err != nil {
		return control.Contact{}, fmt.Errorf("accept: %w", err)
	}
	return contactOf(c), nil
}

func (b controlBackend) RemoveContact(q string) (control.Contact, error) {
	cs, err := b.contacts()
	if err != nil {
		return control.Contact{}, err
	}
	c, err := cs.Find(q)
	switch {
	case errors.Is(err, trust.ErrNotFound):
		return control.Contact{}, fmt.Errorf("%w: no contact %q", control.ErrNotFound, strings.TrimSpace(q))
	case errors.Is(err, trust.ErrAmbiguousContact):
		return control.Contact{}, fmt.Errorf("%w: %q names several contacts: use the Matryoshka ID", control.ErrBadRequest, strings.TrimSpace(q))
	case err != nil:
		return control.Contact{}, err
	}
	if err := cs.Remove(c.ID); err != nil {
		return control.Contact{}, err
	}
	return contactOf(c), nil
}

func (b controlBackend) Trust(query string) (any, error) {
	rep, err := b.n.TrustReport(query)
	switch {
	case errors.Is(err, web.ErrNoTrust):
		return nil, fmt.Errorf("%w: %w", control.ErrUnavailable, err)
	case errors.Is(err, web.ErrUnknownID):
		return nil, fmt.Errorf("%w: %w", control.ErrNotFound, err)
	case err != nil:
		return nil, err
	}
	return rep, nil
}

func (b controlBackend) Enrollment() control.Enrollment {
	st := b.n.StatusWith(false)
	return control.Enrollment{Configured: st.Identity != nil, Identity: st.Identity}
}
