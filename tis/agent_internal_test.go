package tis

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestReadCert: a certificate read from a peer is capped.
func TestReadCert(t *testing.T) {
	big := make([]byte, MaxCertificateSize+1)
	if _, err := readCert(bytes.NewReader(big)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversize certificate: %v", err)
	}
	if b, err := readCert(bytes.NewReader([]byte{1, 2})); err != nil || len(b) != 2 {
		t.Fatalf("small: %v %v", b, err)
	}
}

// FuzzPeerCert: whatever a peer sends on CertProtocol, reading and
// checking it never panics, and only a certificate of the pinned root for
// that peer passes.
func FuzzPeerCert(f *testing.F) {
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		f.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	dir := filepath.Join(f.TempDir(), "tis")
	root, err := Init(dir)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(dir, ServerOptions{OpenEnrollment: true})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	en, err := EnrollNode(ctx, BaseURL(addr.String()), root, priv, f.TempDir(), "fuzz", "fuzz@demo.invalid")
	if err != nil {
		f.Fatal(err)
	}
	good, err := en.NodeCert.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(append([]byte{}, good...), 0))
	f.Add([]byte{})
	f.Add(make([]byte, MaxCertificateSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, err := readCert(bytes.NewReader(b))
		if err != nil {
			if len(b) <= MaxCertificateSize {
				t.Fatalf("readCert refused %d bytes: %v", len(b), err)
			}
			return
		}
		if _, err := VerifyNodeCertBytes(data, root, id, time.Now(), nil); err == nil && !bytes.Equal(data, good) {
			t.Fatalf("a certificate other than the issued one verified: %x", data)
		}
	})
}
