package tis

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailRelay is a real SMTP server (go-smtp) on 127.0.0.1: STARTTLS with a
// certificate of its own, AUTH PLAIN required before MAIL.
type mailRelay struct {
	addr   string
	roots  *x509.CertPool
	user   string
	pass   string
	mu     sync.Mutex
	mails  map[string][]string // recipient -> messages
	notTLS int                 // AUTH attempts without TLS
}

func startMailRelay(t *testing.T) *mailRelay {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	r := &mailRelay{roots: x509.NewCertPool(), user: "tis", pass: "s3cret", mails: map[string][]string{}}
	r.roots.AddCert(cert)
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r, c: c}, nil }))
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return r
}

func (r *mailRelay) last(to string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.mails[to]
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

type relaySession struct {
	r      *mailRelay
	c      *smtp.Conn
	authed bool
	to     []string
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if _, ok := s.c.TLSConnectionState(); !ok {
			s.r.mu.Lock()
			s.r.notTLS++
			s.r.mu.Unlock()
		}
		if user != s.r.user || pass != s.r.pass {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, to := range s.to {
		s.r.mails[to] = append(s.r.mails[to], string(b))
	}
	return nil
}

func (s *relaySession) Reset()        { s.to = nil }
func (s *relaySession) Logout() error { return nil }

var codeInMail = regexp.MustCompile(`code is (\d{8})\.`)

// TestEnrollThroughSMTP mails the codes through a real SMTP relay with
// STARTTLS and AUTH, and enrolls with the code read from the mail.
func TestEnrollThroughSMTP(t *testing.T) {
	relay := startMailRelay(t)
	mailer := &SMTPMailer{Addr: relay.addr, From: "tis@pikcio.test", User: relay.user, Password: relay.pass, TLS: &tls.Config{RootCAs: relay.roots}}
	tt := newTestTIS(t, ServerOptions{Mailer: mailer})
	ctx := testCtx(t)
	c := tt.client()
	c.Code = func(_ context.Context, email string) (string, error) {
		m := codeInMail.FindStringSubmatch(relay.last(strings.ToLower(email)))
		if m == nil {
			return "", errors.New("no code in the mail")
		}
		return m[1], nil
	}
	n := newTestNode(t)
	if _, err := c.Enroll(ctx, n.key, n.mkey, "Grace", "Grace@Example.org"); err != nil {
		t.Fatalf("enroll: %v", err)
	}
	mail := relay.last("grace@example.org")
	if !strings.Contains(mail, "Subject: pikcio enrollment code") || strings.Contains(mail, "enrolled already") {
		t.Fatalf("mail to a new address:\n%s", mail)
	}
	// The address is enrolled now: a new device's mail says so.
	m := newTestNode(t)
	if _, err := c.Enroll(ctx, m.key, m.mkey, "Grace", "grace@example.org"); err != nil {
		t.Fatalf("re-enroll: %v", err)
	}
	if !strings.Contains(relay.last("grace@example.org"), "enrolled already") {
		t.Fatalf("mail to an enrolled address:\n%s", relay.last("grace@example.org"))
	}
	if relay.notTLS != 0 {
		t.Fatal("AUTH sent before TLS")
	}

	// Wrong credentials or an untrusted relay certificate: the TIS says it
	// could not mail, and the person may ask again at once.
	for name, bad := range map[string]*SMTPMailer{
		"password":    {Addr: relay.addr, From: "tis@pikcio.test", User: relay.user, Password: "wrong", TLS: &tls.Config{RootCAs: relay.roots}},
		"certificate": {Addr: relay.addr, From: "tis@pikcio.test", User: relay.user, Password: relay.pass},
	} {
		t.Run(name, func(t *testing.T) {
			tb := newTestTIS(t, ServerOptions{Mailer: bad})
			n := newTestNode(t)
			_, err := tb.client().EnrollCode(ctx, n.key, n.mkey, "Hal", "hal@example.org", "")
			if !errors.Is(err, ErrMail) {
				t.Fatalf("%v, want ErrMail", err)
			}
			_, err = tb.client().EnrollCode(ctx, n.key, n.mkey, "Hal", "hal@example.org", "")
			if !errors.Is(err, ErrMail) {
				t.Fatalf("again: %v, want ErrMail (not a silent resend wait)", err)
			}
		})
	}
}
