package service

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/web"
)

// Config is one service a node publishes: streams to NAME's address go
// to Target, a TCP address. With ContactsOnly, only the node's contacts
// (their client keys) can read its descriptor.
type Config struct {
	Name         string
	Target       string
	ContactsOnly bool
}

// Contact is one of the node's contacts as services see it: what it told
// in the invite exchange.
type Contact struct {
	// Name is the contact's name on this machine; it is reached as
	// Label(Name).pikcio.
	Name string
	// Address is the contact's first service (zero: none told).
	Address Address
	// ClientKey admits the contact to contacts-only services (nil: none).
	ClientKey *ecdh.PublicKey
}

// Label is how a contact's name is written under .pikcio: lower-cased,
// its spaces as hyphens.
func Label(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), " ", "-")
}

// ErrManagerClosed: Apply after Close.
var ErrManagerClosed = errors.New("service manager closed")

// ManagerOptions are what a Manager needs from the node.
type ManagerOptions struct {
	Builder Builder
	Store   RecordStore
	// Contacts lists the node's contacts, read at each use (nil: none).
	Contacts func() []Contact
	// Keys holds the services' keys and the client key.
	Keys KeyDir
	Log  logrus.FieldLogger
	// Host is the template of each service's HostOptions; the Manager
	// sets its Builder, Store, Target, Contacts and Log. Tests shorten
	// its intervals.
	Host HostOptions
}

// Manager runs a node's services by name, as its configuration says
// (Apply), and its dialer of others' services (DialService).
type Manager struct {
	o      ManagerOptions
	client *ecdh.PrivateKey
	dialer *Dialer

	mu     sync.Mutex
	ids    map[string]*Identity // keys loaded, so a name keeps its address within a run without a KeyDir
	hosts  map[string]*managed
	first  string // the service of the card: the first of the last Apply
	closed bool
}

type managed struct {
	cfg  Config
	host *Host
}

// NewManager loads (or creates) the client key; it runs no service
// before Apply.
func NewManager(o ManagerOptions) (*Manager, error) {
	if o.Builder == nil || o.Store == nil {
		return nil, errors.New("service manager: builder and record store are required")
	}
	if o.Log == nil {
		o.Log = logrus.WithField("component", "service")
	}
	client, err := o.Keys.ClientKey()
	if err != nil {
		return nil, err
	}
	m := &Manager{o: o, client: client, ids: make(map[string]*Identity), hosts: make(map[string]*managed)}
	m.dialer = NewDialer(DialerOptions{Builder: o.Builder, Store: o.Store, ClientKey: client,
		PeriodLength: o.Host.PeriodLength, Now: o.Host.Now, Rand: o.Host.Rand})
	return m, nil
}

// CheckConfigs checks a list of services: valid, distinct names and a
// target each.
func CheckConfigs(cfgs []Config) error {
	seen := make(map[string]bool, len(cfgs))
	for _, c := range cfgs {
		if err := CheckName(c.Name); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("service %s listed twice", c.Name)
		}
		seen[c.Name] = true
		if _, _, err := net.SplitHostPort(c.Target); err != nil {
			return fmt.Errorf("service %s: target %q: %w", c.Name, c.Target, err)
		}
	}
	return nil
}

// Apply makes cfgs the services that run: a new one starts (and
// publishes), one no longer listed stops (its intro circuits close and
// its descriptor is not published again, so it expires), a changed
// target applies to new streams, and a change of ContactsOnly
// republishes. Apply fails, changing nothing, if cfgs is invalid or a key
// cannot be loaded.
func (m *Manager) Apply(cfgs []Config) error {
	if err := CheckConfigs(cfgs); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrManagerClosed
	}
	ids := make(map[string]*Identity)
	for _, c := range cfgs {
		if m.hosts[c.Name] != nil {
			continue
		}
		id := m.ids[c.Name]
		if id == nil {
			var err error
			if id, err = m.o.Keys.Identity(c.Name); err != nil {
				return fmt.Errorf("service %s: %w", c.Name, err)
			}
		}
		ids[c.Name] = id
	}
	keep := make(map[string]bool, len(cfgs))
	for _, c := range cfgs {
		keep[c.Name] = true
	}
	for name, s := range m.hosts {
		if !keep[name] {
			_ = s.host.Close()
			delete(m.hosts, name)
			m.o.Log.WithField("service", name).Info("service stopped")
		}
	}
	for _, c := range cfgs {
		log := m.o.Log.WithField("service", c.Name)
		if s := m.hosts[c.Name]; s != nil {
			if s.cfg != c {
				s.host.Update(c.Target, m.contactsOf(c))
				s.cfg = c
				log.Info("service changed")
			}
			continue
		}
		o := m.o.Host
		o.Builder, o.Store, o.Target, o.Contacts, o.Log = m.o.Builder, m.o.Store, c.Target, m.contactsOf(c), log
		h, err := NewHost(ids[c.Name], o)
		if err != nil {
			return fmt.Errorf("service %s: %w", c.Name, err)
		}
		m.ids[c.Name] = ids[c.Name]
		m.hosts[c.Name] = &managed{cfg: c, host: h}
		log.Infof("publishing service at %s", h.Address().Host())
	}
	m.first = ""
	if len(cfgs) > 0 {
		m.first = cfgs[0].Name
	}
	return nil
}

// contactsOf is the Contacts option of c's Host: nil for an open service.
func (m *Manager) contactsOf(c Config) func() []*ecdh.PublicKey {
	if !c.ContactsOnly {
		return nil
	}
	return m.contactKeys
}

// contacts is the contacts source's list, none without one.
func (m *Manager) contacts() []Contact {
	if m.o.Contacts == nil {
		return nil
	}
	return m.o.Contacts()
}

// contactKeys are the client keys of the contacts that told one: who may
// read a contacts-only descriptor.
func (m *Manager) contactKeys() []*ecdh.PublicKey {
	var out []*ecdh.PublicKey
	for _, c := range m.contacts() {
		if c.ClientKey != nil {
			out = append(out, c.ClientKey)
		}
	}
	return out
}

// DialService is the proxy's dialer of .pikcio names: full addresses,
// the names of the node's own services, and the contacts' names.
func (m *Manager) DialService(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return m.dialer.DialService(ctx, host, port, m.Lookup)
}

// Lookup maps NAME of NAME.pikcio to an address, on this machine only:
// one of the node's own services, else a contact whose Label is NAME and
// who told a service.
func (m *Manager) Lookup(name string) (Address, bool) {
	m.mu.Lock()
	s := m.hosts[name]
	m.mu.Unlock()
	if s != nil {
		return s.host.Address(), true
	}
	for _, c := range m.contacts() {
		if c.Address != (Address{}) && Label(c.Name) == name {
			return c.Address, true
		}
	}
	return Address{}, false
}

// Card is what the node tells a new contact: its first service and its
// client key.
func (m *Manager) Card() Card {
	var c Card
	copy(c.ClientKey[:], m.client.PublicKey().Bytes())
	m.mu.Lock()
	if s := m.hosts[m.first]; s != nil {
		c.Address = s.host.Address()
	}
	m.mu.Unlock()
	return c
}

// Status is one running service: never its clients.
type Status struct {
	Name string
	HostStatus
}

// Web is s for the status page and the control API.
func (s Status) Web() web.ServiceStatus {
	ws := web.ServiceStatus{Name: s.Name, Address: s.Address.Host(), IntroPoints: []string{}, Joined: s.Joined, Published: s.Published}
	for _, ip := range s.IntroPoints {
		ws.IntroPoints = append(ws.IntroPoints, ip.String())
	}
	if s.PublishErr != nil {
		ws.PublishErr = s.PublishErr.Error()
	}
	return ws
}

// Status returns the running services, by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.hosts))
	for name, s := range m.hosts {
		out = append(out, Status{Name: name, HostStatus: s.host.Status()})
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Close stops every service and closes the dialer's circuits.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	hosts := m.hosts
	m.hosts = make(map[string]*managed)
	m.mu.Unlock()
	for _, s := range hosts {
		_ = s.host.Close()
	}
	return m.dialer.Close()
}
