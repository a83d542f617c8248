package trust

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/pikcio/pikcio/internal/wire"

	ma "github.com/multiformats/go-multiaddr"
)

// Invite codes, in one place.
const (
	// InvitePrefix starts every invite code.
	InvitePrefix = "pikcio-invite:"
	// InviteSecretSize is the size of an invite's random secret.
	InviteSecretSize = 16
	// MaxInviteAddrs and MaxInviteAddrLen cap the reachability info.
	MaxInviteAddrs   = 8
	MaxInviteAddrLen = 256
	// MaxInviteCodeLen caps an invite code, in characters.
	MaxInviteCodeLen = len(InvitePrefix) + (1+InviteSecretSize+8+1+MaxInviteAddrs*(2+MaxInviteAddrLen)+2)/3*4
	// DefaultInviteLifetime is the validity of a new invite.
	DefaultInviteLifetime = 48 * time.Hour

	inviteVersion = 1
)

// Invite is what one user hands another (by any channel) to start a
// contact exchange: a random secret that the exchange will prove
// knowledge of, the inviter's reachability (multiaddrs, with /p2p/ node
// IDs), and an expiry. It carries no name and no Matryoshka ID: those are
// exchanged, and names chosen, on each side later. Whoever sees the code
// can reach the inviter's node and present the secret until it expires;
// treat it like a one-time password.
type Invite struct {
	Secret  [InviteSecretSize]byte
	Addrs   []ma.Multiaddr
	Expires time.Time // whole seconds
}

// NewInvite returns an invite with a fresh random secret.
func NewInvite(addrs []ma.Multiaddr, expires time.Time) (*Invite, error) {
	inv := &Invite{Addrs: addrs, Expires: expires.Truncate(time.Second)}
	if _, err := rand.Read(inv.Secret[:]); err != nil {
		return nil, fmt.Errorf("invite secret: %w", err)
	}
	if _, err := inv.encode(); err != nil {
		return nil, err
	}
	return inv, nil
}

func (inv *Invite) encode() ([]byte, error) {
	if len(inv.Addrs) == 0 || len(inv.Addrs) > MaxInviteAddrs {
		return nil, fmt.Errorf("invite with %d addresses: %w", len(inv.Addrs), ErrMalformed)
	}
	if !validTime(inv.Expires) {
		return nil, fmt.Errorf("invite expiry: %w", ErrMalformed)
	}
	b := []byte{inviteVersion}
	b = append(b, inv.Secret[:]...)
	b = appendTime(b, inv.Expires)
	b = append(b, byte(len(inv.Addrs)))
	for _, a := range inv.Addrs {
		if a == nil || len(a.Bytes()) == 0 || len(a.Bytes()) > MaxInviteAddrLen {
			return nil, fmt.Errorf("invite address: %w", ErrMalformed)
		}
		b = wire.AppendBytes16(b, a.Bytes())
	}
	return b, nil
}

// String returns the invite code: InvitePrefix and the unpadded base64url
// of the canonical encoding, safe in a URL or a chat message. It returns
// "" for an invalid invite.
func (inv *Invite) String() string {
	b, err := inv.encode()
	if err != nil {
		return ""
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseInvite parses an invite code (surrounding white space is ignored).
// It does not check the expiry; see Expired.
func ParseInvite(s string) (*Invite, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxInviteCodeLen {
		return nil, fmt.Errorf("invite code of %d characters: %w", len(s), ErrMalformed)
	}
	rest, ok := strings.CutPrefix(s, InvitePrefix)
	if !ok {
		return nil, fmt.Errorf("not an invite code: %w", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("invite code: %w", ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("invite version"); r.Err() == nil && v != inviteVersion {
		r.Fail("invite version %d", v)
	}
	inv := &Invite{}
	copy(inv.Secret[:], r.Take(InviteSecretSize, "secret"))
	inv.Expires = r.Time("expiry")
	n := int(r.U8("address count"))
	if r.Err() == nil && (n == 0 || n > MaxInviteAddrs) {
		r.Fail("%d addresses", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		ab := r.Bytes16("address", MaxInviteAddrLen)
		if r.Err() != nil {
			break
		}
		a, err := ma.NewMultiaddrBytes(ab)
		if err != nil || !bytes.Equal(a.Bytes(), ab) {
			r.Fail("address %d", i)
			break
		}
		inv.Addrs = append(inv.Addrs, a)
	}
	r.End("invite")
	if r.Err() != nil {
		return nil, r.Err()
	}
	return inv, nil
}

// Expired reports whether the invite is no longer valid at now.
func (inv *Invite) Expired(now time.Time) bool { return !now.Before(inv.Expires) }
