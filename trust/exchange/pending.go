package exchange

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/internal/filelock"
	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// InvitesFile holds the pending invites in the node's data directory
// (0600), and InvitesLockFile serializes its changes between processes.
const (
	InvitesFile     = "invites.json"
	InvitesLockFile = "invites.lock"
)

const invitesVersion = 1

// Labels of what is derived from an invite secret.
var (
	tagLabel    = []byte("pikcio invite id\x00")
	macKeyLabel = []byte("pikcio invite mac key\x00")
)

// inviteTag is the lookup tag of an invite: SHA-256 of a label and the
// secret. It names the invite on the wire and in InvitesFile.
func inviteTag(secret []byte) [32]byte {
	return sha256.Sum256(append(slices.Clone(tagLabel), secret...))
}

// macKey is the key of both sides' MACs, derived from the secret so that
// InvitesFile need not hold the secret itself.
func macKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(macKeyLabel)
	return m.Sum(nil)
}

// pendingInvite is one invite waiting for the friend.
type pendingInvite struct {
	Tag     [32]byte
	MACKey  []byte
	Expires time.Time
	Name    string // the inviter's local name for the friend
}

type pendingJSON struct {
	Tag     string    `json:"tag"`
	MACKey  []byte    `json:"mac_key"`
	Expires time.Time `json:"expires"`
	Name    string    `json:"name"`
}

type invitesJSON struct {
	Version int           `json:"version"`
	Invites []pendingJSON `json:"invites"`
}

// Pending is the set of invites a node has made and not yet seen used,
// kept in InvitesFile: per invite the lookup tag and MAC key derived from
// its secret, its expiry, and the local name the inviter chose for the
// friend. The secret itself is not kept. Every change re-reads the file
// under an exclusive lock on InvitesLockFile (the node consumes invites
// while `pikcio contacts invite` adds them), drops invites expired for
// more than ExpiredKeep, and writes it atomically.
type Pending struct {
	path, lock string
}

// OpenPending returns the pending invites of the data directory dir.
func OpenPending(dir string) *Pending {
	return &Pending{path: filepath.Join(dir, InvitesFile), lock: filepath.Join(dir, InvitesLockFile)}
}

// CreateInvite makes an invite to the node reachable at addrs (with their
// /p2p/ component), valid for lifetime (0: trust.DefaultInviteLifetime, at
// most MaxLifetime) from now, and records it in dir's InvitesFile under
// name, the inviter's local name for the friend.
func CreateInvite(dir string, addrs []ma.Multiaddr, name string, lifetime time.Duration, now time.Time) (*trust.Invite, error) {
	return OpenPending(dir).Create(addrs, name, lifetime, now)
}

// Create is CreateInvite on p.
func (p *Pending) Create(addrs []ma.Multiaddr, name string, lifetime time.Duration, now time.Time) (*trust.Invite, error) {
	name, err := tis.NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("contact name: %w", err)
	}
	if lifetime == 0 {
		lifetime = trust.DefaultInviteLifetime
	}
	if lifetime < time.Second || lifetime > MaxLifetime {
		return nil, fmt.Errorf("invite lifetime %s: between 1s and %s", lifetime, MaxLifetime)
	}
	if _, err := inviterPeer(addrs); err != nil {
		return nil, err
	}
	inv, err := trust.NewInvite(addrs, now.Add(lifetime))
	if err != nil {
		return nil, err
	}
	if inv.String() == "" {
		return nil, fmt.Errorf("invite: %w", trust.ErrMalformed)
	}
	entry := pendingInvite{Tag: inviteTag(inv.Secret[:]), MACKey: macKey(inv.Secret[:]), Expires: inv.Expires, Name: name}
	err = p.update(now, func(list []pendingInvite) ([]pendingInvite, error) {
		live := 0
		for _, e := range list {
			if now.Before(e.Expires) {
				live++
			}
		}
		if live >= MaxPending {
			return nil, fmt.Errorf("%d invites pending: %w", live, ErrTooManyInvites)
		}
		return append(list, entry), nil
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// Len returns the number of invites pending and not expired at now.
func (p *Pending) Len(now time.Time) (int, error) {
	list, err := p.read()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list {
		if now.Before(e.Expires) {
			n++
		}
	}
	return n, nil
}

// lookup returns the invite tagged tag, or ErrInviteUnknown.
func (p *Pending) lookup(tag [32]byte) (pendingInvite, error) {
	list, err := p.read()
	if err != nil {
		return pendingInvite{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	for _, e := range list {
		if hmac.Equal(e.Tag[:], tag[:]) {
			return e, nil
		}
	}
	return pendingInvite{}, ErrInviteUnknown
}

// consume removes the unexpired invite tagged tag if use, called with it
// under the lock, succeeds: of two exchanges with the same invite, one
// wins and the other gets ErrInviteUnknown.
func (p *Pending) consume(tag [32]byte, now time.Time, use func(pendingInvite) error) error {
	return p.update(now, func(list []pendingInvite) ([]pendingInvite, error) {
		i := slices.IndexFunc(list, func(e pendingInvite) bool { return hmac.Equal(e.Tag[:], tag[:]) })
		if i < 0 {
			return nil, ErrInviteUnknown
		}
		if !now.Before(list[i].Expires) {
			return nil, ErrInviteExpired
		}
		if err := use(list[i]); err != nil {
			return nil, err
		}
		return slices.Delete(list, i, i+1), nil
	})
}

// update applies change to the invites as the file holds them now, under
// the lock, after pruning, and writes the result.
func (p *Pending) update(now time.Time, change func([]pendingInvite) ([]pendingInvite, error)) error {
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	unlock, err := filelock.Lock(p.lock)
	if err != nil {
		return fmt.Errorf("invites: %w", err)
	}
	defer unlock()
	list, err := p.read()
	if err != nil {
		return err
	}
	list = slices.DeleteFunc(list, func(e pendingInvite) bool { return !now.Before(e.Expires.Add(ExpiredKeep)) })
	next, err := change(list)
	if err != nil {
		return err
	}
	return p.save(next)
}

func (p *Pending) read() ([]pendingInvite, error) {
	data, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read invites: %w", err)
	}
	var f invitesJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", p.path, err)
	}
	if f.Version != invitesVersion {
		return nil, fmt.Errorf("%s: version %d: %w", p.path, f.Version, trust.ErrMalformed)
	}
	list := make([]pendingInvite, 0, len(f.Invites))
	for _, j := range f.Invites {
		e := pendingInvite{MACKey: j.MACKey, Expires: j.Expires, Name: j.Name}
		tag, err := hex.DecodeString(j.Tag)
		if err != nil || len(tag) != len(e.Tag) || len(j.MACKey) != sha256.Size {
			return nil, fmt.Errorf("%s: invite entry: %w", p.path, trust.ErrMalformed)
		}
		copy(e.Tag[:], tag)
		list = append(list, e)
	}
	return list, nil
}

func (p *Pending) save(list []pendingInvite) error {
	f := invitesJSON{Version: invitesVersion, Invites: []pendingJSON{}}
	for _, e := range list {
		f.Invites = append(f.Invites, pendingJSON{Tag: hex.EncodeToString(e.Tag[:]), MACKey: e.MACKey, Expires: e.Expires, Name: e.Name})
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode invites: %w", err)
	}
	return privfile.Replace(p.path, append(data, '\n'))
}
