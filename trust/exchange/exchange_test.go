package exchange

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// filesHolding returns the files under dirs whose contents hold s.
func filesHolding(t *testing.T, s string, dirs ...string) []string {
	t.Helper()
	var found []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(s)) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

func TestExchange(t *testing.T) {
	tt := newTestTIS(t)
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{})
	bob := tt.newAccepter(t, tt.enroll(t, "bob"))
	rec := alice.record()
	const aliceName, bobName = "Bobby from school", "Alice the great"

	inv := alice.invite(t, aliceName) // Alice's name for Bob
	if n, err := OpenPending(alice.dir).Len(time.Now()); err != nil || n != 1 {
		t.Fatalf("pending invites %d, %v", n, err)
	}
	code := inv.String()
	parsed, err := trust.ParseInvite(code) // as Bob's CLI gets it
	if err != nil {
		t.Fatal(err)
	}
	ct, err := bob.accept(t, parsed, tt.root, bobName)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if ct.ID != alice.self.MatryoshkaCert.ID || ct.Name != bobName || ct.Node != alice.node || ct.NodeCert == nil {
		t.Fatalf("Bob's contact %+v", ct)
	}
	// Alice's side: Bob under Alice's name, with the node of his
	// certificate (not the short-lived host he dialed from).
	if err := alice.contacts.ReloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	got, ok := alice.contacts.Get(bob.self.MatryoshkaCert.ID)
	if !ok || got.Name != aliceName || got.Node != bob.node || got.Node == bob.host.ID() {
		t.Fatalf("Alice's contact %+v, %v", got, ok)
	}
	if byNode, ok := alice.contacts.ByNode(bob.node); !ok || byNode.ID != got.ID {
		t.Fatal("ByNode does not find Bob's node")
	}
	if n, err := OpenPending(alice.dir).Len(time.Now()); err != nil || n != 0 {
		t.Fatalf("pending invites after use %d, %v", n, err)
	}

	// Each name is in its own contacts file and nowhere else, and did not
	// travel.
	for _, tc := range []struct{ name, file string }{
		{aliceName, filepath.Join(alice.dir, trust.ContactsFile)},
		{bobName, filepath.Join(bob.dir, trust.ContactsFile)},
	} {
		if files := filesHolding(t, tc.name, alice.dir, bob.dir); !slices.Equal(files, []string{tc.file}) {
			t.Errorf("name %q found in %v, want only %s", tc.name, files, tc.file)
		}
		if wireBytes := rec.bytes(); len(wireBytes) < MaxHelloSize/4 || bytes.Contains(wireBytes, []byte(tc.name)) {
			t.Errorf("stream bytes (%d) hold %q", len(wireBytes), tc.name)
		}
	}
	// The certificates did travel (the recorder works).
	enc, _ := bob.self.MatryoshkaCert.Encode()
	if !bytes.Contains(rec.bytes(), enc) {
		t.Fatal("recorder did not see Bob's certificate")
	}

	// The invite is spent.
	if _, err := bob.accept(t, parsed, tt.root, bobName); !errors.Is(err, ErrInviteUnknown) {
		t.Fatalf("invite reused: %v, want ErrInviteUnknown", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	tt := newTestTIS(t)
	aliceU := tt.enroll(t, "alice")
	alice := tt.newNode(t, aliceU, Options{})
	bobU := tt.enroll(t, "bob")
	bob := tt.newAccepter(t, bobU)
	other := newTestTIS(t)
	stranger := other.newAccepter(t, other.enroll(t, "mallory"))
	noNode := tt.enroll(t, "dave")
	noNode.self.NodeCert, noNode.self.NodeKey = nil, nil

	for _, tc := range []struct {
		name   string
		run    func(t *testing.T) error
		want   error
		spends bool // whether the invite is used up
	}{
		{"wrong secret", func(t *testing.T) error {
			inv := alice.invite(t, "friend")
			inv.Secret[0] ^= 1
			_, err := bob.accept(t, inv, tt.root, "alice")
			return err
		}, ErrInviteUnknown, false},
		{"expired at the accepter", func(t *testing.T) error {
			inv, err := CreateInvite(alice.dir, alice.addrs(t), "friend", time.Hour, time.Now().Add(-2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			_, err = bob.accept(t, inv, tt.root, "alice")
			return err
		}, ErrInviteExpired, false},
		{"expired at the inviter", func(t *testing.T) error {
			late := tt.newNode(t, tt.enroll(t, "late"), Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
			_, err := bob.accept(t, late.invite(t, "friend"), tt.root, "late")
			return err
		}, ErrInviteExpired, false},
		{"accepter certificate of another TIS", func(t *testing.T) error {
			_, err := stranger.accept(t, alice.invite(t, "friend"), other.root, "alice")
			return err
		}, ErrCertificate, false},
		{"inviter certificate of another TIS", func(t *testing.T) error {
			_, err := bob.accept(t, alice.invite(t, "friend"), other.root, "alice")
			return err
		}, ErrCertificate, true},
		{"own invite", func(t *testing.T) error {
			self := tt.newAccepter(t, aliceU)
			_, err := self.accept(t, alice.invite(t, "me"), tt.root, "me")
			return err
		}, ErrOwnInvite, false},
		{"bad name", func(t *testing.T) error {
			_, err := bob.accept(t, alice.invite(t, "friend"), tt.root, " \t")
			return err
		}, tis.ErrBadProperties, false},
		{"node certificate without its key", func(t *testing.T) error {
			u := bobU
			u.self.NodeKey = nil // and the short-lived host's key is another
			a := tt.newAccepter(t, u)
			_, err := a.accept(t, alice.invite(t, "friend"), tt.root, "alice")
			return err
		}, ErrSelf, false},
		{"accepter without node", func(t *testing.T) error {
			a := tt.newAccepter(t, noNode)
			if _, err := a.accept(t, alice.invite(t, "friend"), tt.root, "alice"); err != nil {
				return err
			}
			if err := alice.contacts.Reload(); err != nil {
				t.Fatal(err)
			}
			if ct, ok := alice.contacts.Get(noNode.self.MatryoshkaCert.ID); !ok || ct.Node != "" || ct.NodeCert != nil {
				t.Fatalf("contact without node: %+v", ct)
			}
			return nil
		}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := OpenPending(alice.dir).Len(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.run(t); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after, err := OpenPending(alice.dir).Len(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			made := 1
			if tc.name == "expired at the accepter" || tc.name == "expired at the inviter" {
				made = 0 // not live when made, or made at another node
			}
			if want := before + made; tc.spends {
				want--
				if after != want {
					t.Fatalf("%d invites pending, want %d (spent)", after, want)
				}
			} else if after != want {
				t.Fatalf("%d invites pending, want %d (not spent)", after, want)
			}
		})
	}
}

// TestExchangeForged sends hand-made hellos: proofs that do not verify
// are refused, and the invite stays usable.
func TestExchangeForged(t *testing.T) {
	tt := newTestTIS(t)
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{})
	bob := tt.newAccepter(t, tt.enroll(t, "bob"))
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	carol := tt.enroll(t, "carol")
	inv := alice.invite(t, "Bob")
	from, to := bob.host.ID(), alice.host.ID()

	for _, tc := range []struct {
		name   string
		tamper func(h *hello, tr []byte)
		want   byte
	}{
		{"signature by another key", func(h *hello, tr []byte) {
			h.Sig = ed25519.Sign(otherKey, append(slices.Clone(matryoshkaContext), tr...))
		}, codeBadProof},
		{"signature over the wrong context", func(h *hello, tr []byte) {
			h.Sig = ed25519.Sign(bob.self.MatryoshkaKey, append(slices.Clone(nodeContext), tr...))
		}, codeBadProof},
		{"node signature by another node", func(h *hello, tr []byte) {
			h.NodeSig, _ = carol.nodeKey.Sign(append(slices.Clone(nodeContext), tr...))
		}, codeBadProof},
		{"someone else's node certificate", func(h *hello, _ []byte) {
			// MAC and signatures are over Bob's own node certificate.
			h.NCert = carol.self.NodeCert
		}, codeUnknown},
		{"someone else's node certificate, MAC redone", func(h *hello, _ []byte) {
			h.NCert = carol.self.NodeCert
			tr, _ := helloTranscript(from, to, h.Tag, &h.part)
			h.MAC = mac(macKey(inv.Secret[:]), tr)
			h.Sig = ed25519.Sign(bob.self.MatryoshkaKey, append(slices.Clone(matryoshkaContext), tr...))
		}, codeBadProof},
		{"Matryoshka certificate of someone else", func(h *hello, _ []byte) {
			h.MCert = carol.self.MatryoshkaCert
			tr, _ := helloTranscript(from, to, h.Tag, &h.part)
			h.MAC = mac(macKey(inv.Secret[:]), tr)
		}, codeBadProof},
		{"node certificate as Matryoshka certificate", func(h *hello, _ []byte) {
			h.MCert = bob.self.NodeCert
			tr, _ := helloTranscript(from, to, h.Tag, &h.part)
			h.MAC = mac(macKey(inv.Secret[:]), tr)
		}, codeCertificate},
		{"MAC of another key", func(h *hello, tr []byte) {
			h.MAC = mac(make([]byte, 32), tr)
		}, codeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := rawExchange(t, bob.host, alice, craftHello(t, bob.user, from, to, inv, tc.tamper))
			if rep.Code != tc.want {
				t.Fatalf("reply %s, want %s", codeName(rep.Code), codeName(tc.want))
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		if rep := rawExchange(t, bob.host, alice, []byte{version, 1, 2, 3}); rep.Code != codeMalformed {
			t.Fatalf("reply %s", codeName(rep.Code))
		}
	})
	// None of that spent the invite.
	if _, err := bob.accept(t, inv, tt.root, "Alice"); err != nil {
		t.Fatalf("Accept after forgeries: %v", err)
	}
}

// TestExchangeReplay captures a hello on its way to the inviter and plays
// it again from another peer: the MAC binds the peer IDs, so it is
// refused, and the invite still works for its owner.
func TestExchangeReplay(t *testing.T) {
	tt := newTestTIS(t)
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{})
	bob := tt.newAccepter(t, tt.enroll(t, "bob"))
	inv := alice.invite(t, "Bob")

	captured := make(chan []byte, 1)
	alice.host.SetStreamHandler(ProtocolID, func(s network.Stream) {
		b, err := readFrame(s, MaxHelloSize)
		if err == nil {
			captured <- b
		}
		_ = s.Reset()
	})
	if _, err := bob.accept(t, inv, tt.root, "Alice"); err == nil {
		t.Fatal("Accept succeeded against a capturing handler")
	}
	var msg []byte
	select {
	case msg = <-captured:
	case <-time.After(10 * time.Second):
		t.Fatal("no hello captured")
	}
	alice.host.SetStreamHandler(ProtocolID, alice.svc.handle)

	eve := newHost(t, nil)
	if rep := rawExchange(t, eve, alice, msg); rep.Code != codeUnknown {
		t.Fatalf("replayed hello: %s, want %s", codeName(rep.Code), codeName(codeUnknown))
	}
	if _, ok := alice.contacts.Get(bob.self.MatryoshkaCert.ID); ok {
		t.Fatal("replay added Bob")
	}
	if _, err := bob.accept(t, inv, tt.root, "Alice"); err != nil {
		t.Fatalf("Accept after the replay: %v", err)
	}
}

func TestExchangeRateLimit(t *testing.T) {
	tt := newTestTIS(t)
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{AttemptsPerSecond: 0.001, AttemptBurst: 2})
	bob := tt.newAccepter(t, tt.enroll(t, "bob"))
	inv := alice.invite(t, "Bob")
	wrong := *inv
	wrong.Secret[0] ^= 1
	for i, want := range []error{ErrInviteUnknown, ErrInviteUnknown, ErrRateLimited} {
		if _, err := bob.accept(t, &wrong, tt.root, "Alice"); !errors.Is(err, want) {
			t.Fatalf("attempt %d: %v, want %v", i, err, want)
		}
	}
	if _, err := bob.accept(t, inv, tt.root, "Alice"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("right secret while limited: %v", err)
	}
}

// TestExchangeConcurrent runs exchanges while a `pikcio contacts remove`
// (another Contacts on the same directory) removes contacts, and two
// friends race for one invite.
func TestExchangeConcurrent(t *testing.T) {
	tt := newTestTIS(t)
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{})
	const n = 4
	var friends, old []*accepter
	for i := range n {
		friends = append(friends, tt.newAccepter(t, tt.enroll(t, fmt.Sprintf("friend%d", i))))
		u := tt.enroll(t, fmt.Sprintf("old%d", i))
		if err := alice.contacts.Add("old", u.self.MatryoshkaCert, time.Now()); err != nil {
			t.Fatal(err)
		}
		old = append(old, &accepter{user: u})
	}
	cli, err := trust.OpenContacts(alice.dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	var invites []*trust.Invite
	for range friends {
		invites = append(invites, alice.invite(t, "friend"))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, err := friends[i].accept(t, invites[i], tt.root, "Alice")
			errs <- err
		})
		wg.Go(func() { errs <- cli.Remove(old[i].self.MatryoshkaCert.ID) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := trust.OpenContacts(alice.dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range friends {
		if _, ok := fresh.Get(f.self.MatryoshkaCert.ID); !ok {
			t.Error("a friend's contact was lost")
		}
	}
	for _, o := range old {
		if _, ok := fresh.Get(o.self.MatryoshkaCert.ID); ok {
			t.Error("a removed contact came back")
		}
	}
	if len(fresh.List()) != n {
		t.Fatalf("%d contacts, want %d", len(fresh.List()), n)
	}

	// Two friends, one invite: exactly one wins.
	a, b := tt.newAccepter(t, tt.enroll(t, "racer1")), tt.newAccepter(t, tt.enroll(t, "racer2"))
	inv := alice.invite(t, "racer")
	results := make(chan error, 2)
	for _, r := range []*accepter{a, b} {
		wg.Go(func() {
			_, err := r.accept(t, inv, tt.root, "Alice")
			results <- err
		})
	}
	wg.Wait()
	close(results)
	var won, unknown int
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrInviteUnknown):
			unknown++
		default:
			t.Fatalf("racer: %v", err)
		}
	}
	if won != 1 || unknown != 1 {
		t.Fatalf("%d won, %d unknown; want 1 and 1", won, unknown)
	}
}

// TestServiceClose checks that Close resets an exchange in progress,
// waits for its handler, and that the protocol is no longer served.
func TestServiceClose(t *testing.T) {
	tt := newTestTIS(t)
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{})
	h := newHost(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, alice.host.Peerstore().PeerInfo(alice.host.ID())); err != nil {
		t.Fatal(err)
	}
	st, err := h.NewStream(ctx, alice.host.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte{0}); err != nil { // half a length: the handler waits
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		alice.svc.mu.Lock()
		n := len(alice.svc.streams)
		alice.svc.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("handler never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := alice.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := alice.svc.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFrame(st, MaxReplySize); err == nil {
		t.Fatal("reply after Close")
	}
	if slices.Contains(alice.host.Mux().Protocols(), ProtocolID) {
		t.Fatal("protocol still served after Close")
	}
}

func TestExchangeRevoked(t *testing.T) {
	tt := newTestTIS(t)
	bobU := tt.enroll(t, "bob")
	if err := tt.srv.Revoke(bobU.self.MatryoshkaCert.Serial); err != nil {
		t.Fatal(err)
	}
	revs, _ := tt.srv.RevocationList()
	alice := tt.newNode(t, tt.enroll(t, "alice"), Options{Revocations: func() *tis.RevocationList { return revs }})
	bob := tt.newAccepter(t, bobU)
	if _, err := bob.accept(t, alice.invite(t, "Bob"), tt.root, "Alice"); !errors.Is(err, ErrCertificate) {
		t.Fatalf("revoked accepter: %v, want ErrCertificate", err)
	}
}

// TestExchangeServiceCards: each side tells the other its Matryoshka
// service card, which both contacts files keep (issue 17); a side without
// one leaves the other's contact without.
func TestExchangeServiceCards(t *testing.T) {
	tt := newTestTIS(t)
	aliceCard := &trust.ServiceCard{Address: [32]byte{1, 2, 3}, ClientKey: [32]byte{4, 5, 6}}
	bobCard := &trust.ServiceCard{Address: [32]byte{7, 8, 9}, ClientKey: [32]byte{10, 11}}
	au := tt.enroll(t, "alice")
	au.self.Service = func() *trust.ServiceCard { return aliceCard }
	alice := tt.newNode(t, au, Options{})
	bu := tt.enroll(t, "bob")
	bu.self.Service = func() *trust.ServiceCard { return bobCard }
	bob := tt.newAccepter(t, bu)
	ct, err := bob.accept(t, alice.invite(t, "bob"), tt.root, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ct.Service == nil || *ct.Service != *aliceCard {
		t.Fatalf("Bob's contact Alice has card %+v", ct.Service)
	}
	// Kept across a reopen of the file.
	reopened, err := trust.OpenContacts(bob.dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := reopened.Get(ct.ID); !ok || c.Service == nil || *c.Service != *aliceCard {
		t.Fatalf("reopened contact %+v", c)
	}
	if err := alice.contacts.ReloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	if got, ok := alice.contacts.Get(bob.self.MatryoshkaCert.ID); !ok || got.Service == nil || *got.Service != *bobCard {
		t.Fatalf("Alice's contact Bob has card %+v", got.Service)
	}

	carol := tt.newAccepter(t, tt.enroll(t, "carol")) // no service
	if _, err := carol.accept(t, alice.invite(t, "carol"), tt.root, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := alice.contacts.ReloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	if got, _ := alice.contacts.Get(carol.self.MatryoshkaCert.ID); got.Service != nil {
		t.Fatalf("Carol presented no card; Alice keeps %+v", got.Service)
	}
}
