package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/tis/tistest"
)

func TestMain(m *testing.M) {
	logrus.SetLevel(logrus.WarnLevel)
	os.Exit(m.Run())
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a real TIS on loopback with an Issuer mounted on it.
type fixture struct {
	tis    *tistest.TIS
	issuer *Issuer
	clock  *clock
}

// newFixture starts a TIS and mounts an issuer with opts (its clock is
// the fixture's; its keys and counts in the TIS's store unless opts says
// otherwise).
func newFixture(t testing.TB, opts IssuerOptions) *fixture {
	t.Helper()
	f := &fixture{tis: tistest.Start(t, nil), clock: newClock()}
	opts.Now = f.clock.Now
	is, err := Mount(f.tis.Server, f.tis.Dir, opts)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	f.issuer = is
	return f
}

// client returns an issuance client of p on the fixture's clock.
func (f *fixture) client(p tistest.Person) *Client {
	c := NewClient(f.tis.URL, f.tis.Root, p.NodeKey, p.Enrollment.NodeCert)
	c.Now = f.clock.Now
	return c
}

// redeemer returns a guard's redeemer fed with the keys the TIS publishes.
func (f *fixture) redeemer(t testing.TB, opts RedeemerOptions) *Redeemer {
	t.Helper()
	return f.redeemerFor(t, testGuard, opts)
}

// redeemerFor is redeemer for another guard.
func (f *fixture) redeemerFor(t testing.TB, guard peer.ID, opts RedeemerOptions) *Redeemer {
	t.Helper()
	r := NewRedeemer(f.tis.Root, guard, opts)
	keys, err := FetchKeys(ctx(t), nil, f.tis.URL, f.tis.Root)
	if err != nil {
		t.Fatalf("FetchKeys: %v", err)
	}
	if err := r.AddKeys(keys, f.clock.Now()); err != nil {
		t.Fatalf("AddKeys: %v", err)
	}
	return r
}

// Two guards' peer IDs.
var testGuard, otherGuard = guardID(1), guardID(2)

func guardID(seed byte) peer.ID {
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return id
}

// issue asks for n tokens for testGuard and returns them encoded.
func issue(t testing.TB, c *Client, n int) ([][]byte, *Batch) {
	t.Helper()
	b, err := c.Issue(ctx(t), testGuard, n)
	if err != nil {
		t.Fatalf("Issue(%d): %v", n, err)
	}
	out := make([][]byte, len(b.Tokens))
	for i, tok := range b.Tokens {
		if out[i], err = tok.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	return out, b
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
