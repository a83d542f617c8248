package tis

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// newRootKey returns a fresh root key pair.
func newRootKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue signs a certificate of typ for key with signer, valid from
// issued for life.
func issue(t testing.TB, signer ed25519.PrivateKey, typ CertType, key ed25519.PublicKey, issued time.Time, life time.Duration) *Certificate {
	t.Helper()
	c := &Certificate{Type: typ, SubjectKey: key, IssuedAt: issued.UTC().Truncate(time.Second), Expires: issued.UTC().Truncate(time.Second).Add(life)}
	rand.Read(c.Serial[:])
	rand.Read(c.ID[:])
	if err := c.sign(signer); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyNodeCert(t *testing.T) {
	root := newRootKey(t)
	rootPub := root.Public().(ed25519.PublicKey)
	foreign := newRootKey(t)
	n, other := newTestNode(t), newTestNode(t)
	now := time.Now()
	nodePub := n.pub(t)
	valid := issue(t, root, TypeNode, nodePub, now.Add(-time.Hour), 24*time.Hour)
	revoked := issue(t, root, TypeNode, nodePub, now.Add(-time.Hour), 24*time.Hour)
	revs := &RevocationList{Sequence: 3, IssuedAt: now.Truncate(time.Second), NextUpdate: now.Truncate(time.Second).Add(time.Hour), Serials: []Serial{revoked.Serial}}
	if err := revs.sign(root); err != nil {
		t.Fatal(err)
	}

	// A node signing its own certificate with its libp2p key.
	rawPriv, err := n.key.Raw()
	if err != nil {
		t.Fatal(err)
	}
	selfKey := ed25519.PrivateKey(rawPriv)
	selfSigned := issue(t, selfKey, TypeNode, nodePub, now.Add(-time.Hour), 24*time.Hour)
	claimsRoot := issue(t, selfKey, TypeNode, nodePub, now.Add(-time.Hour), 24*time.Hour)
	claimsRoot.Issuer = RootKeyID(rootPub)
	tampered := *valid
	tampered.Expires = tampered.Expires.Add(365 * 24 * time.Hour)

	tests := []struct {
		name string
		cert *Certificate
		root ed25519.PublicKey
		peer testNode
		now  time.Time
		want error
	}{
		{"valid", valid, rootPub, n, now, nil},
		{"self-signed", selfSigned, rootPub, n, now, ErrUnknownIssuer},
		{"self-signed claiming the root", claimsRoot, rootPub, n, now, ErrSignature},
		{"foreign TIS", issue(t, foreign, TypeNode, nodePub, now.Add(-time.Hour), 24*time.Hour), rootPub, n, now, ErrUnknownIssuer},
		{"tampered expiry", &tampered, rootPub, n, now, ErrSignature},
		{"expired", issue(t, root, TypeNode, nodePub, now.Add(-48*time.Hour), 24*time.Hour), rootPub, n, now, ErrExpired},
		{"expires right now", valid, rootPub, n, valid.Expires, ErrExpired},
		{"not yet valid", issue(t, root, TypeNode, nodePub, now.Add(time.Hour), 24*time.Hour), rootPub, n, now, ErrNotYetValid},
		{"revoked", revoked, rootPub, n, now, ErrRevoked},
		{"wrong peer", valid, rootPub, other, now, ErrWrongKey},
		{"matryoshka certificate", issue(t, root, TypeMatryoshka, nodePub, now.Add(-time.Hour), 24*time.Hour), rootPub, n, now, ErrWrongType},
		{"nil", nil, rootPub, n, now, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyNodeCert(tc.cert, tc.root, tc.peer.id, tc.now, revs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyNodeCert: %v, want %v", err, tc.want)
			}
			if tc.cert == nil || tc.want == ErrMalformed {
				return
			}
			// The same through the descriptor extension bytes.
			b, err := tc.cert.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyNodeCertBytes(b, tc.root, tc.peer.id, tc.now, revs); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyNodeCertBytes: %v, want %v", err, tc.want)
			}
		})
	}
	if err := VerifyNodeCert(revoked, rootPub, n.id, now, nil); err != nil {
		t.Fatalf("without a revocation list: %v", err)
	}
}

func TestVerifyMatryoshkaCert(t *testing.T) {
	root := newRootKey(t)
	rootPub := root.Public().(ed25519.PublicKey)
	n, other := newTestNode(t), newTestNode(t)
	now := time.Now()
	mpub := n.mkey.Public().(ed25519.PublicKey)
	c := issue(t, root, TypeMatryoshka, mpub, now.Add(-time.Hour), time.Hour*2)
	if err := VerifyMatryoshkaCert(c, rootPub, mpub, now, nil); err != nil {
		t.Fatal(err)
	}
	if err := VerifyMatryoshkaCert(c, rootPub, other.mkey.Public().(ed25519.PublicKey), now, nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other key: %v", err)
	}
	nc := issue(t, root, TypeNode, n.pub(t), now.Add(-time.Hour), time.Hour*2)
	if err := VerifyMatryoshkaCert(nc, rootPub, n.pub(t), now, nil); !errors.Is(err, ErrWrongType) {
		t.Fatalf("node cert as matryoshka: %v", err)
	}
}

func TestPeerIDOfCertificate(t *testing.T) {
	n := newTestNode(t)
	c := issue(t, newRootKey(t), TypeNode, n.pub(t), time.Now(), time.Hour)
	id, err := c.PeerID()
	if err != nil || id != n.id {
		t.Fatalf("PeerID = %s, %v; want %s", id, err, n.id)
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(c.SubjectKey)
	if err != nil || !pub.Equals(n.key.GetPublic()) {
		t.Fatal("subject key is not the libp2p key")
	}
}

func TestIDsUnlinkable(t *testing.T) {
	secret := make([]byte, 32)
	other := make([]byte, 32)
	rand.Read(secret)
	rand.Read(other)
	p, err := normalizeProperties("Alice", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	q, err := normalizeProperties(" alice ", "ALICE@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[ID]string{}
	add := func(name string, id ID) {
		if prev, ok := ids[id]; ok {
			t.Errorf("%s and %s collide", name, prev)
		}
		ids[id] = name
	}
	add("node", p.nodeID(secret))
	add("matryoshka", p.matryoshkaID(secret))
	add("node under another secret", p.nodeID(other))
	add("matryoshka under another secret", p.matryoshkaID(other))
	add("e-mail index", p.emailIndex(secret))
	add("name case differs", q.nodeID(secret)) // names keep their case
	if p.emailIndex(secret) != q.emailIndex(secret) {
		t.Error("e-mail index differs for the same normalized e-mail")
	}
	if p.nodeID(secret) != p.nodeID(secret) {
		t.Error("node ID not deterministic")
	}
}
