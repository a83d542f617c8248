// Package tistest starts a real TIS on 127.0.0.1 for the tests of other
// packages: a fresh root in a temporary directory, served over HTTP until
// the test ends.
package tistest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
)

// TIS is a running test TIS.
type TIS struct {
	Server  *tis.Server
	Dir     string             // its directory (tis.Init)
	Addr    string             // host:port it serves on
	URL     string             // tis.BaseURL(Addr)
	Root    ed25519.PublicKey  // the root public key
	RootKey ed25519.PrivateKey // the root private key, to sign test records
}

// Start initializes a TIS in a temporary directory and serves it on
// 127.0.0.1 until the test ends. opts, if not nil, gives the server's
// options from the new root key (a relay scorer may need it); unset
// enrollment and per-address rates are lifted.
func Start(t testing.TB, opts func(root ed25519.PublicKey) tis.ServerOptions) *TIS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tis")
	root, err := tis.Init(dir)
	if err != nil {
		t.Fatalf("tis.Init: %v", err)
	}
	var o tis.ServerOptions
	if opts != nil {
		o = opts(root)
	}
	return Serve(t, dir, o)
}

// Serve serves the TIS initialized in dir with o on 127.0.0.1 until the
// test ends: with the same o.DB (a PostgreSQL URL), a second Serve of
// one dir is a second server of one TIS, as a second process would be.
// Unset enrollment and per-address rates are lifted.
func Serve(t testing.TB, dir string, o tis.ServerOptions) *TIS {
	t.Helper()
	priv, err := os.ReadFile(filepath.Join(dir, tis.RootKeyFile))
	if err != nil || len(priv) != ed25519.PrivateKeySize {
		t.Fatalf("read root key: %v (%d bytes)", err, len(priv))
	}
	root := ed25519.PrivateKey(priv).Public().(ed25519.PublicKey)
	// Nodes of the tests enroll themselves (node.Options.Enroll) with no
	// one to read a mail: enrollment needs no code unless a test gives a
	// Mailer.
	o.OpenEnrollment = o.Mailer == nil
	// Every test client comes from 127.0.0.1, and tests enroll many.
	if o.AddrRate == 0 {
		o.AddrRate, o.AddrBurst = 1e6, 1e6
	}
	if o.EnrollRate == 0 {
		o.EnrollRate, o.EnrollBurst = 1e6, 1e6
	}
	srv, err := tis.NewServer(dir, o)
	if err != nil {
		t.Fatalf("tis.NewServer: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return &TIS{Server: srv, Dir: dir, Addr: addr.String(), URL: tis.BaseURL(addr.String()), Root: root, RootKey: ed25519.PrivateKey(priv)}
}

// Person is someone enrolled by Enroll: fresh keys and the enrollment.
type Person struct {
	NodeKey       crypto.PrivKey
	MatryoshkaKey ed25519.PrivateKey
	Enrollment    *tis.Enrollment
}

// Enroll enrolls a new person called name (e-mail name@example.org) with
// fresh node and Matryoshka keys.
func (s *TIS) Enroll(t testing.TB, name string) Person {
	t.Helper()
	nodeKey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, mkey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := tis.NewClient(s.URL, s.Root).Enroll(ctx, nodeKey, mkey, name, name+"@example.org")
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	return Person{NodeKey: nodeKey, MatryoshkaKey: mkey, Enrollment: e}
}

// Node is a node enrolled by EnrollNode: its key, data directory and
// loaded agent.
type Node struct {
	Key   crypto.PrivKey
	ID    peer.ID
	Dir   string
	Agent *tis.Agent
}

// EnrollNode enrolls a new node called name into a fresh data directory
// (tis.EnrollFirst) and loads its agent with o, whose Root the TIS's
// root replaces; o.URL "" makes an agent that learns revocations from
// the record store only.
func (s *TIS) EnrollNode(t testing.TB, name string, o tis.AgentOptions) Node {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o.Root = s.Root
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tis.EnrollFirst(ctx, tis.AgentOptions{Root: s.Root, URL: s.URL}, dir, priv, name, name+"@example.org", ""); err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	a, err := tis.LoadAgent(o, dir, id)
	if err != nil {
		t.Fatalf("load agent %s: %v", name, err)
	}
	return Node{Key: priv, ID: id, Dir: dir, Agent: a}
}
