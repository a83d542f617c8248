package tis

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testTIS is a TIS serving HTTP on 127.0.0.1.
type testTIS struct {
	dir  string
	srv  *Server
	url  string
	root ed25519.PublicKey
	mail *DemoMailer // the codes the TIS sent
}

// newTestTIS initializes a TIS in a temporary directory and serves it.
func newTestTIS(t testing.TB, opts ServerOptions) *testTIS {
	t.Helper()
	dir := t.TempDir() + "/tis"
	root, err := Init(dir)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	tt := &testTIS{dir: dir, root: root, mail: &DemoMailer{Quiet: true}}
	tt.start(t, opts)
	return tt
}

// start opens the TIS directory and serves it on a new loopback port.
func (tt *testTIS) start(t testing.TB, opts ServerOptions) {
	t.Helper()
	if opts.EnrollRate == 0 {
		opts.EnrollRate, opts.EnrollBurst = 1000, 1000
	}
	if opts.AddrRate == 0 {
		opts.AddrRate, opts.AddrBurst = 1000, 1000
	}
	if opts.Mailer == nil && !opts.OpenEnrollment {
		opts.Mailer = tt.mail
	}
	srv, err := NewServer(tt.dir, opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	tt.srv, tt.url = srv, "http://"+addr.String()
}

func (tt *testTIS) client() *Client {
	c := NewClient(tt.url, tt.root)
	c.HTTP.Timeout = 10 * time.Second
	c.Code = tt.mail.Code
	return c
}

// testNode is the key material of a node.
type testNode struct {
	key  crypto.PrivKey
	id   peer.ID
	mkey ed25519.PrivateKey
}

func newTestNode(t *testing.T) testNode { return newTestNodeB(t) }

func newTestNodeB(t testing.TB) testNode {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	_, mk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testNode{key: k, id: id, mkey: mk}
}

func (n testNode) pub(t *testing.T) ed25519.PublicKey {
	t.Helper()
	raw, err := n.key.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
