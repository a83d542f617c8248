package tis

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEnrollOverTLS serves HTTPS (as on a public address) and enrolls
// through it with a client that trusts the server's certificate.
func TestEnrollOverTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tis test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}

	tisDir := filepath.Join(dir, "tis")
	root, err := Init(tisDir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(tisDir, ServerOptions{TLSCertFile: certFile, TLSKeyFile: keyFile, OpenEnrollment: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(x)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(transport.CloseIdleConnections)
	c := &Client{BaseURL: "https://" + addr.String(), Root: root, HTTP: &http.Client{Timeout: 10 * time.Second, Transport: transport}}
	n := newTestNode(t)
	e, err := c.Enroll(testCtx(t), n.key, n.mkey, "Tls", "tls@example.org")
	if err != nil {
		t.Fatalf("Enroll over TLS: %v", err)
	}
	if err := VerifyNodeCert(e.NodeCert, root, n.id, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	// Plain HTTP to the TLS port fails.
	plain := &Client{BaseURL: "http://" + addr.String(), Root: root, HTTP: &http.Client{Timeout: 10 * time.Second}}
	if _, err := plain.FetchRevocations(testCtx(t)); err == nil {
		t.Fatal("plain HTTP answered on the TLS port")
	}
}
