package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/tis/tistest"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
)

// newBook is a ContactBook on a fresh store with Bob as a contact; its
// Exchange adds the inviter as contact "name" (with Alice's certificate)
// without a network.
func newBook(t *testing.T) (control.ContactBook, *tistest.TIS) {
	t.Helper()
	s := tistest.Start(t, nil)
	dir := t.TempDir()
	cs, err := trust.OpenContacts(dir, s.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Add("Bob", s.Enroll(t, "bob").Enrollment.MatryoshkaCert, time.Now()); err != nil {
		t.Fatal(err)
	}
	alice := s.Enroll(t, "alice").Enrollment.MatryoshkaCert
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzBsbqWXyRHShbmRcFsBZDm4xnv1NZ9vBqGoaRyu5qC2")
	b := control.ContactBook{
		Store: cs,
		Dir:   dir,
		Addrs: func() []ma.Multiaddr {
			out := make([]ma.Multiaddr, 20)
			for i := range out {
				out[i] = addr
			}
			return out
		},
		Exchange: func(ctx context.Context, inv *trust.Invite, name string) (trust.Contact, error) {
			if err := cs.Add(name, alice, time.Now()); err != nil {
				return trust.Contact{}, err
			}
			return cs.Find(name)
		},
	}
	return b, s
}

func TestContactBook(t *testing.T) {
	b, _ := newBook(t)
	list, err := b.Contacts()
	if err != nil || len(list) != 1 || list[0].Name != "Bob" || list[0].ID == "" {
		t.Fatalf("Contacts = %+v, %v", list, err)
	}

	t.Run("invite", func(t *testing.T) {
		tests := []struct {
			name     string
			who      string
			lifetime time.Duration
			want     error
		}{
			{"default lifetime", "Carol", 0, nil},
			{"an hour", "Carol", time.Hour, nil},
			{"negative", "Carol", -time.Second, control.ErrBadRequest},
			{"beyond the maximum", "Carol", exchange.MaxLifetime + time.Second, control.ErrBadRequest},
			{"bad name", "\x00", time.Hour, control.ErrBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				inv, err := b.Invite(tt.who, tt.lifetime)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("Invite: %v, want %v", err, tt.want)
				}
				if err != nil {
					return
				}
				parsed, err := trust.ParseInvite(inv.Code)
				if err != nil {
					t.Fatalf("invite code: %v", err)
				}
				if len(parsed.Addrs) > trust.MaxInviteAddrs {
					t.Fatalf("invite with %d addresses, want at most %d", len(parsed.Addrs), trust.MaxInviteAddrs)
				}
				life := tt.lifetime
				if life == 0 {
					life = trust.DefaultInviteLifetime
				}
				if d := time.Until(inv.Expires); d > life || d < life-time.Minute {
					t.Fatalf("invite expires in %v, want %v", d, life)
				}
			})
		}
	})

	t.Run("accept", func(t *testing.T) {
		inv, err := b.Invite("Dan", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Accept(t.Context(), "not a code", "Alice"); !errors.Is(err, control.ErrBadRequest) {
			t.Fatalf("Accept of garbage: %v, want ErrBadRequest", err)
		}
		if _, err := b.Accept(t.Context(), inv.Code, ""); !errors.Is(err, control.ErrBadRequest) {
			t.Fatalf("Accept without a name: %v, want ErrBadRequest", err)
		}
		c, err := b.Accept(t.Context(), inv.Code, "  Alice ")
		if err != nil || c.Name != "Alice" {
			t.Fatalf("Accept = %+v, %v; want the normalized name", c, err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		tests := []struct {
			q    string
			want error
		}{
			{"nobody", control.ErrNotFound},
			{" bob ", nil},
			{"bob", control.ErrNotFound},
		}
		for _, tt := range tests {
			c, err := b.RemoveContact(tt.q)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("RemoveContact(%q) = %+v, %v; want %v", tt.q, c, err, tt.want)
			}
			if err == nil && c.Name != "Bob" {
				t.Fatalf("removed %+v, want Bob", c)
			}
		}
	})
}

// TestContactBookAmbiguous: a name two contacts have is refused, and the
// answer names neither contact's ID.
func TestContactBookAmbiguous(t *testing.T) {
	b, s := newBook(t)
	if err := b.Store.Add("Bob", s.Enroll(t, "bob2").Enrollment.MatryoshkaCert, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := b.RemoveContact("bob")
	if !errors.Is(err, control.ErrBadRequest) {
		t.Fatalf("RemoveContact of a shared name: %v, want ErrBadRequest", err)
	}
	for _, c := range b.Store.List() {
		if strings.Contains(err.Error(), c.ID.String()) {
			t.Fatalf("error %q names a contact's ID", err)
		}
	}
	if list, _ := b.Contacts(); len(list) != 2 {
		t.Fatalf("contacts after a refused remove: %+v", list)
	}
}

// TestContactBookWithoutTIS: the zero ContactBook answers ErrUnavailable.
func TestContactBookWithoutTIS(t *testing.T) {
	var b control.ContactBook
	_, err1 := b.Contacts()
	_, err2 := b.Invite("a", time.Hour)
	_, err3 := b.Accept(t.Context(), "x", "a")
	_, err4 := b.RemoveContact("a")
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, control.ErrUnavailable) {
			t.Errorf("call %d: %v, want ErrUnavailable", i, err)
		}
	}
}
