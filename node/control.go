package node

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
	"github.com/pikcio/pikcio/web"
)

// The control API (package control) of a node with client.control_listen
// set: the node as its Backend, and control's watcher of the pool and the
// guards.

// controlWatch is how often the watcher compares the pool's circuits and
// the guards with what it saw before.
const controlWatch = 200 * time.Millisecond

// startControl starts the control API when cfg asks for it; n.mu is held.
func (n *Node) startControl(listen string) error {
	if listen == "" {
		return nil
	}
	b := controlBackend{n: n, ContactBook: control.ContactBook{Dir: n.dataDir, Addrs: n.Addrs}}
	if n.trust != nil {
		b.Store = n.trust.Contacts()
		b.Exchange = func(ctx context.Context, inv *trust.Invite, name string) (trust.Contact, error) {
			return exchange.Accept(ctx, n.host, inv, n.exchangeSelf(), n.tis.Root(), b.Store, name)
		}
	}
	srv, err := control.Listen(listen, filepath.Join(n.dataDir, control.CookieFile), b, func(iso control.Isolation) (string, error) {
		return proxy.IsolationKeyFor(iso.Proxy, iso.Username, iso.Password)
	})
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	var pool control.Pool
	if n.pool != nil {
		pool = n.pool
	}
	srv.ServePool(pool, n.guardIDs, controlWatch)
	n.control = srv
	return nil
}

// guardIDs are the short IDs of the entry guards.
func (n *Node) guardIDs() []string {
	var ids []string
	for _, g := range n.disc.Guards() {
		ids = append(ids, ShortID(g.ID))
	}
	return ids
}

// ControlAddr is the control API's address, nil when it is off.
func (n *Node) ControlAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.control == nil {
		return ""
	}
	a := n.control.Addr()
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

// publish sends an event to the control API's streams, if it runs.
func (n *Node) publish(e control.Event) {
	n.mu.Lock()
	nc := n.control
	n.mu.Unlock()
	if nc != nil {
		nc.Publish(e)
	}
}

// controlBackend is the node as the control API's Backend.
type controlBackend struct {
	n *Node
	control.ContactBook
}

var _ control.Backend = controlBackend{}

func (b controlBackend) Status() web.Status { return b.n.StatusWith(false) }

func (b controlBackend) NewIdentity() bool { return b.n.NewIdentity() }

func (b controlBackend) Trust(query string) (*web.TrustReport, error) {
	return b.n.TrustReport(query)
}

func (b controlBackend) Enrollment() control.Enrollment {
	st := b.n.StatusWith(false)
	return control.Enrollment{Configured: st.Identity != nil, Identity: st.Identity}
}
