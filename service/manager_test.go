package service_test

import (
	"context"
	"crypto/ecdh"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/service/servicetest"
)

// tagServer answers every connection with tag and closes it.
func tagServer(t *testing.T, tag string) string {
	t.Helper()
	addr, _ := testutil.Serve(t, func(c net.Conn) {
		_, _ = io.WriteString(c, tag)
		_ = c.Close()
	})
	return addr.String()
}

// fakeContacts is a contacts source a test changes.
type fakeContacts struct {
	mu   sync.Mutex
	list []service.Contact
}

func (f *fakeContacts) get() []service.Contact {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]service.Contact(nil), f.list...)
}

func (f *fakeContacts) set(l ...service.Contact) {
	f.mu.Lock()
	f.list = l
	f.mu.Unlock()
}

// readTag dials addr with d and returns what the service sent.
func readTag(ctx context.Context, d *service.Dialer, addr service.Address) (string, error) {
	c, err := d.Dial(ctx, addr, 80)
	if err != nil {
		return "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	return string(b), err
}

func published(m *service.Manager, name string, after time.Time) bool {
	for _, s := range m.Status() {
		if s.Name == name {
			return len(s.IntroPoints) == service.DefaultIntroPoints && s.Published.After(after)
		}
	}
	return false
}

// TestManagerApply: a service added by Apply is reachable by its address
// and its name; a new target applies to the next stream; becoming
// contacts only shuts out a client without a listed key, also one that
// had connected before, and admits one with it; a dropped contact is shut
// out at once; a removed service is unreachable, and added again it has
// the same address (its key is kept).
func TestManagerApply(t *testing.T) {
	testutil.NoLeaks(t, "pikcio/service.")
	nw := servicetest.New(t, 6)
	contacts := &fakeContacts{}
	m, err := service.NewManager(service.ManagerOptions{
		Builder: nw.NewBuilder(t), Store: nw.Store, Contacts: contacts.get,
		Keys: service.KeyDir(t.TempDir()), Host: service.HostOptions{Retry: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	a, b := tagServer(t, "A"), tagServer(t, "B")
	start := time.Now()
	if err := m.Apply([]service.Config{{Name: "web", Target: a}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "web published", func() bool { return published(m, "web", start) })
	addr, ok := m.Lookup("web")
	if !ok || m.Card().Address != addr || m.Status()[0].Address != addr {
		t.Fatalf("lookup %v %v, card %v", addr, ok, m.Card())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cb := nw.NewBuilder(t)
	d := service.NewDialer(service.DialerOptions{Builder: cb, Store: nw.Store})
	t.Cleanup(func() { _ = d.Close() })
	if got, err := readTag(ctx, d, addr); err != nil || got != "A" {
		t.Fatalf("first stream: %q %v", got, err)
	}

	if err := m.Apply([]service.Config{{Name: "web", Target: b}}); err != nil {
		t.Fatal(err)
	}
	if got, err := readTag(ctx, d, addr); err != nil || got != "B" {
		t.Fatalf("stream after the new target: %q %v", got, err)
	}

	// Contacts only: a fresh client without a key no longer reads the
	// descriptor, once the service republished.
	changed := time.Now()
	if err := m.Apply([]service.Config{{Name: "web", Target: b, ContactsOnly: true}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "web republished for contacts", func() bool { return published(m, "web", changed) })
	stranger := service.NewDialer(service.DialerOptions{Builder: cb, Store: nw.Store})
	t.Cleanup(func() { _ = stranger.Close() })
	if _, err := readTag(ctx, stranger, addr); !errors.Is(err, service.ErrNotAuthorized) {
		t.Fatalf("a stranger after contacts_only: %v, want ErrNotAuthorized", err)
	}
	// The client of before, with the open descriptor and a joined
	// circuit, is shut out too: its circuit closed, its intro keys gone.
	shut := func(d *service.Dialer, who string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		if got, err := readTag(sctx, d, addr); err == nil {
			t.Fatalf("%s still reaches the service: %q", who, got)
		}
	}
	shut(d, "the client from before contacts_only")
	key, err := ecdh.X25519().GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	listed := time.Now()
	contacts.set(service.Contact{Name: "Bob Smith", ClientKey: key.PublicKey()})
	testutil.WaitFor(t, 60*time.Second, "web republished with the contact", func() bool { return published(m, "web", listed) })
	friend := service.NewDialer(service.DialerOptions{Builder: cb, Store: nw.Store, ClientKey: key})
	t.Cleanup(func() { _ = friend.Close() })
	if got, err := readTag(ctx, friend, addr); err != nil || got != "B" {
		t.Fatalf("a contact: %q %v", got, err)
	}
	// Dropped, the contact is shut out although it holds the descriptor
	// and a joined circuit; listed again, it gets back in.
	dropped := time.Now()
	contacts.set()
	testutil.WaitFor(t, 60*time.Second, "web republished without the contact", func() bool { return published(m, "web", dropped) })
	shut(friend, "a dropped contact")
	relisted := time.Now()
	contacts.set(service.Contact{Name: "Bob Smith", ClientKey: key.PublicKey()})
	testutil.WaitFor(t, 60*time.Second, "web republished with the contact again", func() bool { return published(m, "web", relisted) })
	friend = service.NewDialer(service.DialerOptions{Builder: cb, Store: nw.Store, ClientKey: key})
	t.Cleanup(func() { _ = friend.Close() })
	if got, err := readTag(ctx, friend, addr); err != nil || got != "B" {
		t.Fatalf("a contact listed again: %q %v", got, err)
	}

	if err := m.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); len(st) != 0 {
		t.Fatalf("status after removal: %+v", st)
	}
	if _, ok := m.Lookup("web"); ok || m.Card().Address != (service.Address{}) {
		t.Fatal("a removed service is still looked up or in the card")
	}
	shut(friend, "a client of a removed service")

	if err := m.Apply([]service.Config{{Name: "web", Target: a}}); err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Lookup("web"); again != addr {
		t.Fatalf("added again at %v, was %v", again, addr)
	}
}

// TestManagerApplyInvalid: a bad list changes nothing.
func TestManagerApplyInvalid(t *testing.T) {
	nw := servicetest.New(t, 0)
	m, err := service.NewManager(service.ManagerOptions{Builder: nw.NewBuilder(t), Store: nw.Store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	for _, cfgs := range [][]service.Config{
		{{Name: "Web", Target: "127.0.0.1:1"}},
		{{Name: "a", Target: "127.0.0.1:1"}, {Name: "a", Target: "127.0.0.1:2"}},
		{{Name: "a", Target: "nowhere"}},
		{{Name: "client", Target: "127.0.0.1:1"}},
	} {
		if err := m.Apply(cfgs); err == nil {
			t.Errorf("Apply(%+v) accepted", cfgs)
		}
	}
	if len(m.Status()) != 0 {
		t.Fatalf("a bad Apply started %+v", m.Status())
	}
	_ = m.Close()
	if err := m.Apply(nil); !errors.Is(err, service.ErrManagerClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
}

// TestManagerLookup: own services first, then contacts by label; the
// card carries the client key, and the first service's address.
func TestManagerLookup(t *testing.T) {
	nw := servicetest.New(t, 0)
	bob, err := service.NewIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	contacts := &fakeContacts{}
	contacts.set(service.Contact{Name: "Bob Smith", Address: bob.Address()}, service.Contact{Name: "Carol"})
	m, err := service.NewManager(service.ManagerOptions{Builder: nw.NewBuilder(t), Store: nw.Store, Contacts: contacts.get})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	tests := []struct {
		name string
		want service.Address
		ok   bool
	}{
		{"bob-smith", bob.Address(), true},
		{"bob", service.Address{}, false},
		{"carol", service.Address{}, false}, // told no service
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := m.Lookup(tt.name)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("Lookup(%q) = %v %v", tt.name, got, ok)
			}
		})
	}
	if c := m.Card(); c.Address != (service.Address{}) || c.ClientKey == ([32]byte{}) {
		t.Fatalf("card without services: %+v", c)
	}
}
