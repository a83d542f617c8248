package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pikcio/pikcio/internal/privfile"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// ContactsFile is the contacts store in the node's data directory (0600).
const ContactsFile = "contacts.json"

// contactsVersion is the version of the contacts.json format.
const contactsVersion = 1

// Contact is a Matryoshka identity the user knows, under a name the user
// chose. The name is local: nothing in this package sends it anywhere.
type Contact struct {
	ID   tis.ID
	Name string
	// Cert is the contact's Matryoshka certificate.
	Cert    *tis.Certificate
	AddedAt time.Time
}

// Contacts is the local contacts store, safe for concurrent use. It has no
// method that publishes names: they never leave the device.
type Contacts struct {
	path string
	root ed25519.PublicKey

	mu       sync.Mutex
	contacts []Contact // sorted by ID
}

type contactJSON struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Cert    []byte    `json:"cert"`
	AddedAt time.Time `json:"added_at"`
}

type contactsJSON struct {
	Version  int           `json:"version"`
	Contacts []contactJSON `json:"contacts"`
}

// OpenContacts loads ContactsFile from the data directory dir (an absent
// file is an empty store). Certificates are checked against root when
// added, not when loaded, so an expired contact stays listed.
func OpenContacts(dir string, root ed25519.PublicKey) (*Contacts, error) {
	c := &Contacts{path: filepath.Join(dir, ContactsFile), root: root}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	var f contactsJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", c.path, err)
	}
	if f.Version != contactsVersion {
		return nil, fmt.Errorf("%s: version %d: %w", c.path, f.Version, ErrMalformed)
	}
	for _, j := range f.Contacts {
		cert, err := tis.DecodeCertificate(j.Cert)
		if err != nil {
			return nil, fmt.Errorf("%s: contact %s: %w", c.path, j.ID, err)
		}
		if cert.Type != tis.TypeMatryoshka || cert.ID.String() != j.ID {
			return nil, fmt.Errorf("%s: contact %s: certificate mismatch: %w", c.path, j.ID, ErrMalformed)
		}
		c.contacts = append(c.contacts, Contact{ID: cert.ID, Name: j.Name, Cert: cert, AddedAt: j.AddedAt})
	}
	c.sort()
	return c, nil
}

func (c *Contacts) sort() {
	slices.SortFunc(c.contacts, func(a, b Contact) int { return bytes.Compare(a.ID[:], b.ID[:]) })
}

// Path returns the file of the store.
func (c *Contacts) Path() string { return c.path }

// Add records (or renames) the contact certified by cert, a Matryoshka
// certificate that must verify against the root key at now, under name
// (normalized with tis.NormalizeName).
func (c *Contacts) Add(name string, cert *tis.Certificate, now time.Time) error {
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
	c.mu.Lock()
	defer c.mu.Unlock()
	next := slices.Clone(c.contacts)
	i, found := slices.BinarySearchFunc(next, cert.ID, func(a Contact, id tis.ID) int { return bytes.Compare(a.ID[:], id[:]) })
	ct := Contact{ID: cert.ID, Name: name, Cert: cert, AddedAt: now.UTC().Truncate(time.Second)}
	if found {
		ct.AddedAt = next[i].AddedAt
		next[i] = ct
	} else {
		next = slices.Insert(next, i, ct)
	}
	if err := c.save(next); err != nil {
		return err
	}
	c.contacts = next
	return nil
}

// Remove deletes the contact id; ErrNotFound if absent.
func (c *Contacts) Remove(id tis.ID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.contacts, func(a Contact) bool { return a.ID == id })
	if i < 0 {
		return fmt.Errorf("remove contact %s: %w", id, ErrNotFound)
	}
	next := slices.Delete(slices.Clone(c.contacts), i, i+1)
	if err := c.save(next); err != nil {
		return err
	}
	c.contacts = next
	return nil
}

// Get returns the contact id.
func (c *Contacts) Get(id tis.ID) (Contact, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ct := range c.contacts {
		if ct.ID == id {
			return ct, true
		}
	}
	return Contact{}, false
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
		f.Contacts = append(f.Contacts, contactJSON{ID: ct.ID.String(), Name: ct.Name, Cert: enc, AddedAt: ct.AddedAt})
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode contacts: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	return privfile.Replace(c.path, append(data, '\n'))
}
