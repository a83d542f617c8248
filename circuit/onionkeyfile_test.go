package circuit

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
)

func testIdentity(t testing.TB) crypto.PrivKey {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func TestOnionKeyFileKeepsKeys(t *testing.T) {
	sk := testIdentity(t)
	path := filepath.Join(t.TempDir(), OnionKeysFile)
	now := time.Now()
	kr, err := openOnionKeyring(sk, time.Hour, 10*time.Minute, now, path)
	if err != nil {
		t.Fatal(err)
	}
	first := kr.current()
	if err := kr.rotate(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	second := kr.current()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("onion key file mode %v, want 0600", fi.Mode().Perm())
	}

	again, err := openOnionKeyring(sk, time.Hour, 10*time.Minute, now.Add(2*time.Minute), path)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.current(); got.Public != second.Public || !got.Expires.Equal(second.Expires) {
		t.Fatal("current onion key not kept across a restart")
	}
	id := kr.id
	if err := again.current().Verify(id, now); err != nil {
		t.Fatalf("reloaded key: %v", err)
	}
	later := now.Add(3 * time.Minute)
	if again.lookup(first.Public[:], later) == nil || again.lookup(second.Public[:], later) == nil {
		t.Fatal("current or previous key not accepted after a restart")
	}
	if again.lookup(first.Public[:], now.Add(20*time.Minute)) != nil {
		t.Fatal("previous key accepted past its grace")
	}

	// A current key that expired while the relay was down is replaced at
	// start; the old one stays acceptable only within its grace.
	expired, err := openOnionKeyring(sk, time.Hour, 10*time.Minute, second.Expires.Add(time.Minute), path)
	if err != nil {
		t.Fatal(err)
	}
	if expired.current().Public == second.Public {
		t.Fatal("expired onion key kept as current")
	}
	if expired.lookup(second.Public[:], second.Expires.Add(2*time.Minute)) == nil {
		t.Fatal("expired key not kept for its grace")
	}
	reread, err := openOnionKeyring(sk, time.Hour, 10*time.Minute, second.Expires.Add(2*time.Minute), path)
	if err != nil {
		t.Fatal(err)
	}
	if reread.current().Public != expired.current().Public {
		t.Fatal("rotation at start not saved")
	}
}

func TestOnionKeyFileBad(t *testing.T) {
	sk := testIdentity(t)
	for _, tc := range []struct{ name, body string }{
		{"garbage", "{"},
		{"version", `{"version":2,"keys":[{"private":"` + "AAAA" + `"}]}`},
		{"no keys", `{"version":1,"keys":[]}`},
		{"short key", `{"version":1,"keys":[{"private":"AAAA"}]}`},
		{"three keys", `{"version":1,"keys":[{},{},{}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), OnionKeysFile)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := openOnionKeyring(sk, time.Hour, time.Minute, time.Now(), path)
			if !errors.Is(err, ErrOnionKeyFile) {
				t.Fatalf("err %v, want ErrOnionKeyFile", err)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.body {
				t.Fatal("a bad onion key file was overwritten")
			}
		})
	}
}

// TestRelayRestartKeepsOnionKey: a relay process that restarts with the
// same data directory accepts circuits built with the key it published
// before; without the file it would refuse them ("handshake failed").
func TestRelayRestartKeepsOnionKey(t *testing.T) {
	sk := testIdentity(t)
	path := filepath.Join(t.TempDir(), OnionKeysFile)
	start := func() (*Relay, func()) {
		rm, err := ResourceManager(RelayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h, err := libp2p.New(libp2p.Identity(sk), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.ResourceManager(rm))
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRelay(h, RelayOptions{Exit: loopbackExit(t), OnionKeyFile: path})
		if err != nil {
			t.Fatal(err)
		}
		return r, func() { r.Close(); h.Close() }
	}
	r, stop := start()
	published := r.Hop()
	stop()
	r, stop = start()
	t.Cleanup(stop)
	hop := r.Hop()
	hop.OnionKey = published.OnionKey // what clients' descriptors still say

	ch := newHost(t)
	t.Cleanup(func() { ch.Close() })
	cl := NewClient(ch, ClientOptions{})
	t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cl.Build(ctx, []Hop{hop})
	if err != nil {
		t.Fatalf("build through the restarted relay with its published key: %v", err)
	}
	c.Close()
}
