package exchange

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
	"github.com/pikcio/pikcio/trust"
)

// testTIS is a real TIS serving HTTP on 127.0.0.1.
type testTIS struct {
	srv  *tis.Server
	root ed25519.PublicKey
	url  string
	s    *tistest.TIS
}

func newTestTIS(t testing.TB) *testTIS {
	t.Helper()
	s := tistest.Start(t, nil)
	return &testTIS{srv: s.Server, root: s.Root, url: s.URL, s: s}
}

// user is an enrolled person: keys and certificates.
type user struct {
	nodeKey crypto.PrivKey
	node    peer.ID
	self    Self
}

func (tt *testTIS) enroll(t testing.TB, name string) user {
	t.Helper()
	p := tt.s.Enroll(t, name)
	id, err := peer.IDFromPrivateKey(p.NodeKey)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Enrollment
	return user{nodeKey: p.NodeKey, node: id, self: Self{MatryoshkaCert: e.MatryoshkaCert, NodeCert: e.NodeCert, MatryoshkaKey: p.MatryoshkaKey, NodeKey: p.NodeKey}}
}

// newHost is a libp2p host on 127.0.0.1 with key (a fresh key if nil).
func newHost(t *testing.T, key crypto.PrivKey) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics()}
	if key != nil {
		opts = append(opts, libp2p.Identity(key))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatalf("libp2p host: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// testNode is a running node of u: host with u's node key, data
// directory, contacts and exchange service.
type testNode struct {
	user
	dir      string
	host     host.Host
	contacts *trust.Contacts
	svc      *Service
}

func (tt *testTIS) newNode(t *testing.T, u user, opts Options) *testNode {
	t.Helper()
	n := &testNode{user: u, dir: filepath.Join(t.TempDir(), "data"), host: newHost(t, u.nodeKey)}
	var err error
	if n.contacts, err = trust.OpenContacts(n.dir, tt.root); err != nil {
		t.Fatal(err)
	}
	self := u.self
	self.NodeKey = nil // the service signs with the host's key
	if n.svc, err = NewService(n.host, n.dir, self, tt.root, n.contacts, opts); err != nil {
		t.Fatalf("NewService: %v", err)
	}
	t.Cleanup(func() { n.svc.Close() })
	return n
}

// addrs returns the node's addresses with /p2p/, as an invite holds them.
func (n *testNode) addrs(t *testing.T) []ma.Multiaddr {
	t.Helper()
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

func (n *testNode) invite(t *testing.T, name string) *trust.Invite {
	t.Helper()
	inv, err := CreateInvite(n.dir, n.addrs(t), name, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	return inv
}

// accepter is the CLI side: a data directory with contacts, and a
// short-lived host with a key of its own.
type accepter struct {
	user
	dir      string
	host     host.Host
	contacts *trust.Contacts
}

func (tt *testTIS) newAccepter(t *testing.T, u user) *accepter {
	t.Helper()
	a := &accepter{user: u, dir: filepath.Join(t.TempDir(), "data"), host: newHost(t, nil)}
	var err error
	if a.contacts, err = trust.OpenContacts(a.dir, tt.root); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *accepter) accept(t *testing.T, inv *trust.Invite, root ed25519.PublicKey, name string) (trust.Contact, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Accept(ctx, a.host, inv, a.self, root, a.contacts, name)
}

// recorder keeps the bytes that pass a stream, both ways.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) add(b []byte) {
	r.mu.Lock()
	r.buf.Write(b)
	r.mu.Unlock()
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

type recordingStream struct {
	network.Stream
	rec *recorder
}

func (s recordingStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	s.rec.add(b[:n])
	return n, err
}

func (s recordingStream) Write(b []byte) (int, error) {
	s.rec.add(b)
	return s.Stream.Write(b)
}

// record makes n's service see its streams through a recorder.
func (n *testNode) record() *recorder {
	rec := &recorder{}
	n.host.SetStreamHandler(ProtocolID, func(s network.Stream) { n.svc.handle(recordingStream{Stream: s, rec: rec}) })
	return rec
}

// rawExchange sends msg as a hello frame from h to n and returns the
// decoded reply.
func rawExchange(t *testing.T, h host.Host, n *testNode, msg []byte) *reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	st, err := h.NewStream(ctx, n.host.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(15 * time.Second))
	if err := writeFrame(st, msg); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	b, err := readFrame(st, MaxReplySize)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	rep, err := decodeReply(b)
	if err != nil {
		t.Fatalf("decode reply: %v", err)
	}
	return rep
}

// craftHello builds the hello that u's Accept from h would send to n for
// inv; tamper, if set, changes it before it is encoded.
func craftHello(t *testing.T, u user, from, to peer.ID, inv *trust.Invite, tamper func(*hello, []byte)) []byte {
	t.Helper()
	hl := &hello{Tag: inviteTag(inv.Secret[:]), part: part{MCert: u.self.MatryoshkaCert, NCert: u.self.NodeCert}}
	tr, err := helloTranscript(from, to, hl.Tag, &hl.part)
	if err != nil {
		t.Fatal(err)
	}
	if err := hl.sign(u.self, u.nodeKey, macKey(inv.Secret[:]), tr); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(hl, tr)
	}
	msg, err := hl.encode()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func codeName(c byte) string {
	if err, ok := codeErrors[c]; ok {
		return err.Error()
	}
	return fmt.Sprintf("code %d", c)
}
