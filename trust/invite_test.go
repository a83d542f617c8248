package trust

import (
	"errors"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func testInvite(t testing.TB) *Invite {
	t.Helper()
	a := ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	b := ma.StringCast("/ip6/::1/udp/4001/quic-v1")
	inv, err := NewInvite([]ma.Multiaddr{a, b}, t0.Add(DefaultInviteLifetime))
	if err != nil {
		t.Fatalf("NewInvite: %v", err)
	}
	return inv
}

func TestInvite(t *testing.T) {
	inv := testInvite(t)
	code := inv.String()
	if !strings.HasPrefix(code, InvitePrefix) || strings.ContainsAny(code[len(InvitePrefix):], "+/=? &") || len(code) > MaxInviteCodeLen {
		t.Fatalf("code %q is not link friendly", code)
	}
	got, err := ParseInvite(" " + code + "\n")
	if err != nil {
		t.Fatalf("ParseInvite: %v", err)
	}
	if got.Secret != inv.Secret || !got.Expires.Equal(inv.Expires) || len(got.Addrs) != 2 || !got.Addrs[0].Equal(inv.Addrs[0]) || got.String() != code {
		t.Fatalf("round trip: %+v, want %+v", got, inv)
	}
	if got.Expired(t0) || !got.Expired(inv.Expires) {
		t.Fatal("Expired")
	}
	if testInvite(t).Secret == inv.Secret {
		t.Fatal("two invites share a secret")
	}
	if _, err := NewInvite(nil, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invite without address: %v", err)
	}
	for _, bad := range []string{"", "pikcio-invite:", "pikcio-invite:AAAA", code[:len(code)-3], code + "A", strings.Replace(code, InvitePrefix, "other:", 1), code + "=", InvitePrefix + strings.Repeat("A", MaxInviteCodeLen)} {
		if _, err := ParseInvite(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseInvite(%.30q...): %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParseInvite(f *testing.F) {
	code := testInvite(f).String()
	f.Add(code)
	f.Add(code[:len(code)/2])
	f.Add("pikcio-invite:")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvite(s)
		if err != nil {
			return
		}
		again, err := ParseInvite(inv.String())
		if err != nil || again.String() != inv.String() {
			t.Fatalf("re-parse of %q: %v", inv.String(), err)
		}
	})
}
