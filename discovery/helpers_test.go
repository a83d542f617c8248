package discovery

import (
	"context"
	"crypto/rand"
	"os"
	"slices"
	"testing"
	"time"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/sirupsen/logrus"
)

func TestMain(m *testing.M) {
	// kad-dht and libp2p log through go-log; keep them quiet.
	golog.SetAllLoggers(golog.LevelFatal)
	_ = golog.SetLogLevel("*", "fatal")
	logrus.SetLevel(logrus.ErrorLevel)
	os.Exit(m.Run())
}

// heavy reports whether the test should run at reduced scale.
func heavy() bool { return testing.Short() || raceEnabled }

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustAddr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func randKey() [32]byte {
	var k [32]byte
	rand.Read(k[:])
	return k
}

// signedDescriptor fabricates a descriptor of priv's peer published at
// now, valid for an hour, with its fields changed by mod, and signs it.
func signedDescriptor(t testing.TB, priv crypto.PrivKey, now time.Time, mod func(*Descriptor)) (*Descriptor, []byte) {
	t.Helper()
	d := &Descriptor{
		Protocol:  1,
		Flags:     FlagRelay | FlagGuard | FlagExit,
		Published: now,
		Expires:   now.Add(time.Hour),
		OnionKey:  OnionKey{Key: randKey(), Expires: now.Add(2 * time.Hour)},
		Addrs:     []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/4001")},
		ExitPorts: []PortRange{{80, 80}, {443, 443}},
	}
	if mod != nil {
		mod(d)
	}
	b, err := d.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	return d, b
}

// newHost starts a libp2p host on 127.0.0.1 with TCP only.
func newHost(t testing.TB) host.Host {
	t.Helper()
	return newHostWithKey(t, newKey(t))
}

func newHostWithKey(t testing.TB, priv crypto.PrivKey) host.Host {
	t.Helper()
	return testutil.TCPHost(t, priv)
}

// waitFor polls cond until it holds or timeout passes (testutil.WaitFor).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ids(ds []*Descriptor) []peer.ID {
	out := make([]peer.ID, len(ds))
	for i, d := range ds {
		out[i] = d.PeerID
	}
	return out
}

func containsID(ds []*Descriptor, id peer.ID) bool { return slices.Contains(ids(ds), id) }
