package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/internal/filelock"
	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/tis"
)

// ContactsFile is the contacts store in the node's data directory (0600).
const ContactsFile = "contacts.json"

// ContactsLockFile serializes changes to ContactsFile between processes
// (the node and the `pikcio contacts` commands).
const ContactsLockFile = "contacts.lock"

// contactsVersion is the version of the contacts.json format.
const contactsVersion = 1

// Contact is a Matryoshka identity the user knows, under a name the user
// chose. The name is local: nothing in this package sends it anywhere.
type Contact struct {
	ID   tis.ID
	Name string
	// Cert is the contact's Matryoshka certificate.
	Cert *tis.Certificate
	// Node is the peer ID of the contact's node (a relay the client may
	// prefer as a guard), and NodeCert its node certificate; both empty if
	// unknown.
	Node     peer.ID
	NodeCert *tis.Certificate
	AddedAt  time.Time
	// Service is what the contact told of its Matryoshka service in the
	// invite exchange; nil if nothing.
	Service *ServiceCard
}

// ServiceCard is what two contacts tell each other of their Matryoshka
// services in the invite exchange (issue 17): the address of the
// service CONTACTNAME.pikcio reaches (the Ed25519 key of package
// service's Address) and the X25519 key the contact's node reads
// contacts-only descriptors with.
type ServiceCard struct {
	Address   [32]byte
	ClientKey [32]byte
}

// ServiceCardLen is the size of an encoded ServiceCard.
const ServiceCardLen = 64

// Encode is Address | ClientKey.
func (c *ServiceCard) Encode() []byte {
	return append(append(make([]byte, 0, ServiceCardLen), c.Address[:]...), c.ClientKey[:]...)
}

// DecodeServiceCard reads an encoded card; empty is nil.
func DecodeServiceCard(b []byte) (*ServiceCard, error) {
	switch len(b) {
	case 0:
		return nil, nil
	case ServiceCardLen:
		c := &ServiceCard{}
		copy(c.Address[:], b[:32])
		copy(c.ClientKey[:], b[32:])
		return c, nil
	}
	return nil, fmt.Errorf("service card of %d bytes: %w", len(b), ErrMalformed)
}

// Contacts is the local contacts store, safe for concurrent use, and for
// use by several processes: every change re-reads the file under an
// exclusive lock on ContactsLockFile. Get, List and ByNode answer from
// memory; Reload or ReloadIfChanged pick up changes made by another
// process. It has no method that publishes names: they never leave the
// device.
type Contacts struct {
	path string
	lock string
	root ed25519.PublicKey

	mu       sync.Mutex
	contacts []Contact // sorted by ID
	byNode   map[peer.ID]int
	stat     fs.FileInfo // of the file last read or written, nil if absent
}

type contactJSON struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Cert     []byte    `json:"cert"`
	Node     string    `json:"node,omitempty"`
	NodeCert []byte    `json:"node_cert,omitempty"`
	AddedAt  time.Time `json:"added_at"`
	Service  string    `json:"service,omitempty"` // hex of ServiceCard.Encode
}

type contactsJSON struct {
	Version  int           `json:"version"`
	Contacts []contactJSON `json:"contacts"`
}

// OpenContacts loads ContactsFile from the data directory dir (an absent
// file is an empty store). Certificates are checked against root when
// added, not when loaded, so an expired contact stays listed.
func OpenContacts(dir string, root ed25519.PublicKey) (*Contacts, error) {
	c := &Contacts{path: filepath.Join(dir, ContactsFile), lock: filepath.Join(dir, ContactsLockFile), root: root}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Path returns the file of the store.
func (c *Contacts) Path() string { return c.path }

// Reload re-reads the file.
func (c *Contacts) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	list, fi, err := c.read()
	if err != nil {
		return err
	}
	c.set(list, fi)
	return nil
}

// ReloadIfChanged re-reads the file if it was replaced, or changed size or
// modification time, since the store last read or wrote it.
func (c *Contacts) ReloadIfChanged() error {
	fi, err := os.Stat(c.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat contacts: %w", err)
	}
	c.mu.Lock()
	same := sameFile(c.stat, fi)
	c.mu.Unlock()
	if same {
		return nil
	}
	return c.Reload()
}

func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// read parses the file; an absent file is an empty store.
func (c *Contacts) read() ([]Contact, fs.FileInfo, error) {
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read contacts: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read contacts: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read contacts: %w", err)
	}
	var jf contactsJSON
	if err := json.Unmarshal(data, &jf); err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", c.path, err)
	}
	if jf.Version != contactsVersion {
		return nil, nil, fmt.Errorf("%s: version %d: %w", c.path, jf.Version, ErrMalformed)
	}
	var list []Contact
	for _, j := range jf.Contacts {
		ct, err := parseContact(j)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: contact %s: %w", c.path, j.ID, err)
		}
		list = append(list, ct)
	}
	slices.SortFunc(list, func(a, b Contact) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return list, fi, nil
}

func parseContact(j contactJSON) (Contact, error) {
	cert, err := tis.DecodeCertificate(j.Cert)
	if err != nil {
		return Contact{}, err
	}
	if cert.Type != tis.TypeMatryoshka || cert.ID.String() != j.ID {
		return Contact{}, fmt.Errorf("certificate mismatch: %w", ErrMalformed)
	}
	ct := Contact{ID: cert.ID, Name: j.Name, Cert: cert, AddedAt: j.AddedAt}
	card, err := hex.DecodeString(j.Service)
	if err != nil {
		return Contact{}, fmt.Errorf("service card: %w", ErrMalformed)
	}
	if ct.Service, err = DecodeServiceCard(card); err != nil {
		return Contact{}, err
	}
	if j.Node != "" {
		if ct.Node, err = peer.Decode(j.Node); err != nil {
			return Contact{}, fmt.Errorf("node %q: %w", j.Node, ErrMalformed)
		}
	}
	if len(j.NodeCert) > 0 {
		if ct.NodeCert, err = tis.DecodeCertificate(j.NodeCert); err != nil {
			return Contact{}, fmt.Errorf("node certificate: %w", err)
		}
		id, err := ct.NodeCert.PeerID()
		if err != nil || ct.NodeCert.Type != tis.TypeNode || id != ct.Node {
			return Contact{}, fmt.Errorf("node certificate mismatch: %w", ErrMalformed)
		}
	}
	return ct, nil
}

// set installs a list read or written; c.mu held.
func (c *Contacts) set(list []Contact, fi fs.FileInfo) {
	c.contacts, c.stat = list, fi
	c.byNode = make(map[peer.ID]int)
	for i, ct := range list {
		if ct.Node != "" {
			c.byNode[ct.Node] = i
		}
	}
}

// update applies change to the contacts as the file holds them now, under
// the inter-process lock, and writes the result.
func (c *Contacts) update(change func([]Contact) ([]Contact, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	unlock, err := filelock.Lock(c.lock)
	if err != nil {
		return fmt.Errorf("contacts: %w", err)
	}
	defer unlock()
	cur, fi, err := c.read()
	if err != nil {
		return err
	}
	next, err := change(cur)
	if err != nil {
		c.set(cur, fi)
		return err
	}
	if err := c.save(next); err != nil {
		return err
	}
	if fi, err = os.Stat(c.path); err != nil {
		return fmt.Errorf("stat contacts: %w", err)
	}
	c.set(next, fi)
	return nil
}

// Add records (or renames) the contact certified by cert, a Matryoshka
// certificate that must verify against the root key at now, under name
// (normalized with tis.NormalizeName). A known contact keeps its node.
func (c *Contacts) Add(name string, cert *tis.Certificate, now time.Time) error {
	return c.AddWithNode(name, cert, nil, now)
}

// AddWithNode is Add that also records the contact's node certificate,
// which must verify against the root key at now (nil keeps what is known).
func (c *Contacts) AddWithNode(name string, cert, nodeCert *tis.Certificate, now time.Time) error {
	return c.AddExchanged(name, cert, nodeCert, nil, now)
}

// AddExchanged is AddWithNode that also records the contact's service
// card (nil keeps what is known), as the invite exchange does.
func (c *Contacts) AddExchanged(name string, cert, nodeCert *tis.Certificate, card *ServiceCard, now time.Time) error {
	name, err := tis.NormalizeName(name)
	if err != nil {
		return fmt.Errorf("contact name: %w", err)
	}
	if cert == nil {
		return fmt.Errorf("contact: no certificate: %w", ErrMalformed)
	}
	if err := tis.VerifyMatryoshkaCert(cert, c.root, cert.SubjectKey, now, nil); err != nil {
		return fmt.Errorf("contact %s: %w", cert.ID, err)
	}
	var node peer.ID
	if nodeCert != nil {
		if node, err = nodeCert.PeerID(); err != nil {
			return fmt.Errorf("contact %s: node certificate: %w", cert.ID, err)
		}
		if err := tis.VerifyNodeCert(nodeCert, c.root, node, now, nil); err != nil {
			return fmt.Errorf("contact %s: %w", cert.ID, err)
		}
	}
	return c.update(func(cur []Contact) ([]Contact, error) {
		next := slices.Clone(cur)
		i, found := slices.BinarySearchFunc(next, cert.ID, func(a Contact, id tis.ID) int { return bytes.Compare(a.ID[:], id[:]) })
		ct := Contact{ID: cert.ID, Name: name, Cert: cert, Node: node, NodeCert: nodeCert, AddedAt: now.UTC().Truncate(time.Second), Service: card}
		if found {
			ct.AddedAt = next[i].AddedAt
			if nodeCert == nil {
				ct.Node, ct.NodeCert = next[i].Node, next[i].NodeCert
			}
			if card == nil {
				ct.Service = next[i].Service
			}
			next[i] = ct
		} else {
			next = slices.Insert(next, i, ct)
		}
		return next, nil
	})
}

// Remove deletes the contact id; ErrNotFound if absent from the file.
func (c *Contacts) Remove(id tis.ID) error {
	return c.update(func(cur []Contact) ([]Contact, error) {
		i := slices.IndexFunc(cur, func(a Contact) bool { return a.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("remove contact %s: %w", id, ErrNotFound)
		}
		return slices.Delete(slices.Clone(cur), i, i+1), nil
	})
}

// Find returns the contact that q names: its Matryoshka ID in hex, or its
// name compared without regard to case, as given or normalized with
// tis.NormalizeName. It fails with ErrNotFound, or ErrAmbiguousContact for
// a name that several contacts have.
func (c *Contacts) Find(q string) (Contact, error) {
	q = strings.TrimSpace(q)
	if id, err := tis.ParseID(strings.ToLower(q)); err == nil {
		if ct, ok := c.Get(id); ok {
			return ct, nil
		}
		return Contact{}, fmt.Errorf("%q: %w", q, ErrNotFound)
	}
	norm, err := tis.NormalizeName(q)
	if err != nil {
		norm = q
	}
	var found []Contact
	for _, ct := range c.List() {
		if strings.EqualFold(ct.Name, norm) || strings.EqualFold(ct.Name, q) {
			found = append(found, ct)
		}
	}
	switch len(found) {
	case 0:
		return Contact{}, fmt.Errorf("%q: %w", q, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return Contact{}, fmt.Errorf("%q: %w", q, ErrAmbiguousContact)
}

// Get returns the contact id.
func (c *Contacts) Get(id tis.ID) (Contact, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, found := slices.BinarySearchFunc(c.contacts, id, func(a Contact, id tis.ID) int { return bytes.Compare(a.ID[:], id[:]) })
	if !found {
		return Contact{}, false
	}
	return c.contacts[i], true
}

// ByNode returns the contact whose node is id.
func (c *Contacts) ByNode(id peer.ID) (Contact, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.byNode[id]
	if !ok {
		return Contact{}, false
	}
	return c.contacts[i], true
}

// List returns the contacts sorted by ID.
func (c *Contacts) List() []Contact {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.contacts)
}

// save writes contacts atomically (temporary file, sync, rename), mode 0600.
func (c *Contacts) save(contacts []Contact) error {
	f := contactsJSON{Version: contactsVersion, Contacts: []contactJSON{}}
	for _, ct := range contacts {
		enc, err := ct.Cert.Encode()
		if err != nil {
			return fmt.Errorf("contact %s: %w", ct.ID, err)
		}
		j := contactJSON{ID: ct.ID.String(), Name: ct.Name, Cert: enc, AddedAt: ct.AddedAt}
		if ct.Node != "" {
			j.Node = ct.Node.String()
		}
		if ct.Service != nil {
			j.Service = hex.EncodeToString(ct.Service.Encode())
		}
		if ct.NodeCert != nil {
			if j.NodeCert, err = ct.NodeCert.Encode(); err != nil {
				return fmt.Errorf("contact %s: node certificate: %w", ct.ID, err)
			}
		}
		f.Contacts = append(f.Contacts, j)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode contacts: %w", err)
	}
	return privfile.Replace(c.path, append(data, '\n'))
}
