package exchange

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

func testAddrs(t *testing.T) []ma.Multiaddr {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001/p2p/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	return []ma.Multiaddr{a}
}

func TestCreateInvite(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	addrs := testAddrs(t)
	bare, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		addrs    []ma.Multiaddr
		nm       string
		lifetime time.Duration
		want     error // nil: success
	}{
		{"default lifetime", addrs, "Bob", 0, nil},
		{"one hour", addrs, "Bob", time.Hour, nil},
		{"empty name", addrs, " ", time.Hour, tis.ErrBadProperties},
		{"address without peer", []ma.Multiaddr{bare}, "Bob", time.Hour, trust.ErrMalformed},
		{"two peers", append(testAddrs(t), addrs...), "Bob", time.Hour, trust.ErrMalformed},
		{"no address", nil, "Bob", time.Hour, trust.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inv, err := CreateInvite(dir, tc.addrs, tc.nm, tc.lifetime, now)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("CreateInvite: %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateInvite: %v", err)
			}
			lifetime := tc.lifetime
			if lifetime == 0 {
				lifetime = trust.DefaultInviteLifetime
			}
			if !inv.Expires.Equal(now.Add(lifetime)) {
				t.Fatalf("expires %s", inv.Expires)
			}
			fi, err := os.Stat(filepath.Join(dir, InvitesFile))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("invites file: %v %v", fi, err)
			}
			data, err := os.ReadFile(filepath.Join(dir, InvitesFile))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, inv.Secret[:]) {
				t.Fatal("invites file holds the secret")
			}
			p := OpenPending(dir)
			e, err := p.lookup(inviteTag(inv.Secret[:]))
			if err != nil || e.Name != "Bob" || string(e.MACKey) != string(macKey(inv.Secret[:])) {
				t.Fatalf("lookup = %+v, %v", e, err)
			}
		})
	}
	for _, lifetime := range []time.Duration{-time.Hour, time.Millisecond, MaxLifetime + time.Second} {
		if _, err := CreateInvite(t.TempDir(), addrs, "Bob", lifetime, now); err == nil {
			t.Errorf("lifetime %s accepted", lifetime)
		}
	}
}

func TestPendingLifecycle(t *testing.T) {
	dir := t.TempDir()
	p := OpenPending(dir)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	addrs := testAddrs(t)
	inv, err := p.Create(addrs, "Bob", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	tag := inviteTag(inv.Secret[:])
	use := func(pendingInvite) error { return nil }

	// Expired: kept (ErrInviteExpired) for ExpiredKeep, then pruned.
	later := now.Add(2 * time.Hour)
	if err := p.consume(tag, later, use); !errors.Is(err, ErrInviteExpired) {
		t.Fatalf("consume expired: %v", err)
	}
	if n, err := p.Len(later); err != nil || n != 0 {
		t.Fatalf("Len after expiry %d, %v", n, err)
	}
	if _, err := p.lookup(tag); err != nil {
		t.Fatalf("expired invite gone before ExpiredKeep: %v", err)
	}
	muchLater := now.Add(time.Hour + ExpiredKeep)
	if _, err := p.Create(addrs, "Carol", time.Hour, muchLater); err != nil {
		t.Fatal(err)
	}
	if _, err := p.lookup(tag); !errors.Is(err, ErrInviteUnknown) {
		t.Fatalf("expired invite not pruned: %v", err)
	}

	// A failing use keeps the invite; a successful one spends it.
	inv, err = p.Create(addrs, "Dave", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	tag = inviteTag(inv.Secret[:])
	boom := errors.New("boom")
	if err := p.consume(tag, now, func(pendingInvite) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("consume with failing use: %v", err)
	}
	var name string
	if err := p.consume(tag, now, func(e pendingInvite) error { name = e.Name; return nil }); err != nil || name != "Dave" {
		t.Fatalf("consume: %v, name %q", err, name)
	}
	if err := p.consume(tag, now, use); !errors.Is(err, ErrInviteUnknown) {
		t.Fatalf("consume twice: %v", err)
	}

	// MaxPending live invites at most.
	full := OpenPending(t.TempDir())
	for range MaxPending {
		if _, err := full.Create(addrs, "x", time.Hour, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := full.Create(addrs, "x", time.Hour, now); !errors.Is(err, ErrTooManyInvites) {
		t.Fatalf("invite over MaxPending: %v", err)
	}

	// A damaged file is an error.
	if err := os.WriteFile(filepath.Join(dir, InvitesFile), []byte(`{"version":1,"invites":[{"tag":"zz"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Len(now); !errors.Is(err, trust.ErrMalformed) {
		t.Fatalf("damaged file: %v", err)
	}
}
