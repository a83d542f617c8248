package tis

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sirupsen/logrus"
)

// CodeMail is one mail of a one-time enrollment code.
type CodeMail struct {
	// To is the normalized e-mail address.
	To string
	// Code is the one-time code, CodeDigits decimal digits.
	Code string
	// Enrolled says the address is enrolled already: the mail then says
	// that entering the code replaces the earlier enrollment (a lost
	// device) and revokes its certificates.
	Enrolled bool
	// Expires is when the code stops working.
	Expires time.Time
}

// Mailer delivers enrollment codes. The TIS answers "code sent" whether or
// not the address is enrolled; only the mail says which.
type Mailer interface {
	SendCode(ctx context.Context, m CodeMail) error
}

// ErrMail reports a code the TIS could not send.
var ErrMail = errors.New("could not send the enrollment code")

// SMTPMailer sends codes through an SMTP relay, over TLS (implicit TLS on
// port 465, STARTTLS elsewhere; never in clear) with AUTH PLAIN when a
// user is set.
type SMTPMailer struct {
	// Addr is the relay's host:port.
	Addr string
	// From is the sender address.
	From string
	// User and Password authenticate to the relay (AUTH PLAIN).
	User, Password string
	// TLS configures the connection (default: verify the relay's host name
	// against the system roots).
	TLS *tls.Config
	// Timeout bounds one delivery (default 30 s).
	Timeout time.Duration
}

var _ Mailer = (*SMTPMailer)(nil)

// SendCode delivers m.
func (s *SMTPMailer) SendCode(ctx context.Context, m CodeMail) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("%w: relay %q: %w", ErrMail, s.Addr, err)
	}
	cfg := s.TLS
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("%w: dial relay: %w", ErrMail, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var c *smtp.Client
	if port == "465" {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("%w: TLS: %w", ErrMail, err)
		}
		c = smtp.NewClient(tc)
	} else if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
		conn.Close()
		return fmt.Errorf("%w: STARTTLS: %w", ErrMail, err)
	}
	defer c.Close()
	if s.User != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
			return fmt.Errorf("%w: auth: %w", ErrMail, err)
		}
	}
	if err := c.SendMail(s.From, []string{m.To}, bytes.NewReader(codeMessage(s.From, m))); err != nil {
		return fmt.Errorf("%w: %w", ErrMail, err)
	}
	return c.Quit()
}

// codeMessage is the RFC 5322 text of a code mail.
func codeMessage(from string, m CodeMail) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: pikcio enrollment code %s\r\n", from, m.To, m.Code)
	fmt.Fprintf(&b, "Date: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Your pikcio enrollment code is %s. It works until %s.\r\n\r\n", m.Code, m.Expires.UTC().Format(time.RFC1123))
	if m.Enrolled {
		b.WriteString("This address is enrolled already. Entering the code enrolls your new\r\n" +
			"device and revokes the certificates of the earlier enrollment.\r\n")
	} else {
		b.WriteString("Enter it where pikcio enroll asks for it.\r\n")
	}
	b.WriteString("If you did not ask for it, ignore this mail: nothing happens without the code.\r\n")
	return []byte(b.String())
}

// DemoMailer is the mailer of a demo or test TIS: it sends no mail, writes
// each code to the TIS log (at warning level, so it shows), and keeps the
// last code of each address for Code. Never use it where real people
// enroll: anyone who reads the log can enroll any address.
type DemoMailer struct {
	// Log receives the codes (default the TIS component logger).
	Log *logrus.Entry
	// Quiet keeps codes out of the log (tests).
	Quiet bool

	mu    sync.Mutex
	codes map[string]string
}

var _ Mailer = (*DemoMailer)(nil)

// SendCode logs m and keeps its code.
func (d *DemoMailer) SendCode(_ context.Context, m CodeMail) error {
	d.mu.Lock()
	if d.codes == nil {
		d.codes = map[string]string{}
	}
	d.codes[m.To] = m.Code
	d.mu.Unlock()
	if !d.Quiet {
		l := d.Log
		if l == nil {
			l = logrus.WithField("component", "tis")
		}
		l.Warnf("demo mode, no mail sent: enrollment code for %s is %s", m.To, m.Code)
	}
	return nil
}

// Code returns the last code sent to email (normalized first), for a
// Client's Code in the same process.
func (d *DemoMailer) Code(_ context.Context, email string) (string, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.codes[e]
	if !ok {
		return "", fmt.Errorf("no code sent to %s", e)
	}
	return c, nil
}

// CodeDigits is the length of an enrollment code.
const CodeDigits = 8

const labelCode = "pikcio-tis/v1/code"

// newCode returns a random code of CodeDigits digits.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	return fmt.Sprintf("%08d", n), nil
}

// codeHash is the keyed hash of a code for one e-mail.
func codeHash(secret []byte, owner, code string) string {
	return hexHash(keyedHash(secret, labelCode, []byte(owner), []byte(code)))
}

func codeMatches(secret []byte, c *pendingCode, code string) bool {
	return hmac.Equal([]byte(codeHash(secret, c.Owner, code)), []byte(c.Hash))
}

// NormalizeCode drops white space and dashes a person may type in a code.
func NormalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, s)
}
