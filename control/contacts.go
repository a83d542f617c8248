package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
)

// ContactBook answers a Backend's contact requests (Contacts, Invite,
// Accept, RemoveContact) from a node's contact store; a node embeds it in
// its Backend. The zero value (no Store: a node without [tis]) answers
// ErrUnavailable.
type ContactBook struct {
	Store *trust.Contacts
	// Dir is where pending invites are kept (the node's data directory).
	Dir string
	// Addrs are the node's addresses with /p2p/, for its invite codes.
	Addrs func() []ma.Multiaddr
	// Exchange accepts an invite under a normalized name: the contact
	// exchange with the inviting node (exchange.Accept), which adds the
	// contact.
	Exchange func(ctx context.Context, inv *trust.Invite, name string) (trust.Contact, error)
}

// acceptTimeout bounds one contact exchange.
const acceptTimeout = time.Minute

func (b ContactBook) contacts() (*trust.Contacts, error) {
	if b.Store == nil {
		return nil, fmt.Errorf("%w: contacts need [tis]", ErrUnavailable)
	}
	return b.Store, nil
}

func contactOf(c trust.Contact) Contact {
	out := Contact{Name: c.Name, ID: c.ID.String(), Added: c.AddedAt}
	if c.Node != "" {
		out.Node = c.Node.String()
	}
	return out
}

// Contacts lists the contacts.
func (b ContactBook) Contacts() ([]Contact, error) {
	cs, err := b.contacts()
	if err != nil {
		return nil, err
	}
	var out []Contact
	for _, c := range cs.List() {
		out = append(out, contactOf(c))
	}
	return out, nil
}

// Invite makes an invite code for name, valid for lifetime (0:
// trust.DefaultInviteLifetime, at most exchange.MaxLifetime), with at most
// trust.MaxInviteAddrs of the node's addresses.
func (b ContactBook) Invite(name string, lifetime time.Duration) (Invite, error) {
	if _, err := b.contacts(); err != nil {
		return Invite{}, err
	}
	norm, err := tis.NormalizeName(name)
	if err != nil {
		return Invite{}, fmt.Errorf("%w: name: %w", ErrBadRequest, err)
	}
	if lifetime == 0 {
		lifetime = trust.DefaultInviteLifetime
	}
	if lifetime < 0 || lifetime > exchange.MaxLifetime {
		return Invite{}, fmt.Errorf("%w: lifetime %v: want more than 0 and at most %v", ErrBadRequest, lifetime, exchange.MaxLifetime)
	}
	addrs := b.Addrs()
	if len(addrs) > trust.MaxInviteAddrs {
		addrs = addrs[:trust.MaxInviteAddrs]
	}
	inv, err := exchange.CreateInvite(b.Dir, addrs, norm, lifetime, time.Now())
	if errors.Is(err, exchange.ErrTooManyInvites) {
		return Invite{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err != nil {
		return Invite{}, err
	}
	return Invite{Code: inv.String(), Expires: inv.Expires}, nil
}

// Accept accepts a friend's invite code under name.
func (b ContactBook) Accept(ctx context.Context, code, name string) (Contact, error) {
	if _, err := b.contacts(); err != nil {
		return Contact{}, err
	}
	norm, err := tis.NormalizeName(name)
	if err != nil {
		return Contact{}, fmt.Errorf("%w: name: %w", ErrBadRequest, err)
	}
	inv, err := trust.ParseInvite(code)
	if err != nil {
		return Contact{}, fmt.Errorf("%w: not an invite code: %w", ErrBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(ctx, acceptTimeout)
	defer cancel()
	c, err := b.Exchange(ctx, inv, norm)
	if err != nil {
		return Contact{}, fmt.Errorf("accept: %w", err)
	}
	return contactOf(c), nil
}

// RemoveContact forgets the contact q names (trust.Contacts.Find).
func (b ContactBook) RemoveContact(q string) (Contact, error) {
	cs, err := b.contacts()
	if err != nil {
		return Contact{}, err
	}
	c, err := cs.Find(q)
	switch {
	case errors.Is(err, trust.ErrNotFound):
		return Contact{}, fmt.Errorf("%w: no contact %q", ErrNotFound, strings.TrimSpace(q))
	case errors.Is(err, trust.ErrAmbiguousContact):
		return Contact{}, fmt.Errorf("%w: %q names several contacts: use the Matryoshka ID", ErrBadRequest, strings.TrimSpace(q))
	case err != nil:
		return Contact{}, err
	}
	if err := cs.Remove(c.ID); err != nil {
		return Contact{}, err
	}
	return contactOf(c), nil
}
