package tis

import (
	"bytes"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for a server and its clients.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestEnrollmentCodes(t *testing.T) {
	clk := &clock{t: time.Now()}
	tt := newTestTIS(t, ServerOptions{Now: clk.Now})
	ctx := testCtx(t)
	client := func() *Client {
		c := tt.client()
		c.Code, c.Now = nil, clk.Now
		return c
	}
	enrollWith := func(n testNode, email, code string) (*Enrollment, error) {
		return client().EnrollCode(ctx, n.key, n.mkey, "Pat", email, code)
	}
	mailed := func(email string) string {
		t.Helper()
		c, err := tt.mail.Code(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wrong := func(code string) string { return string('0'+(code[0]-'0'+1)%10) + code[1:] }

	t.Run("no code: refused, a code is mailed", func(t *testing.T) {
		n := newTestNode(t)
		if _, err := enrollWith(n, "a@example.org", ""); !errors.Is(err, ErrCodeSent) {
			t.Fatalf("%v, want ErrCodeSent", err)
		}
		if _, err := enrollWith(n, "a@example.org", mailed("a@example.org")); err != nil {
			t.Fatalf("with the mailed code: %v", err)
		}
	})
	t.Run("wrong code", func(t *testing.T) {
		n := newTestNode(t)
		enrollWith(n, "b@example.org", "")
		code := mailed("b@example.org")
		if _, err := enrollWith(n, "b@example.org", wrong(code)); !errors.Is(err, ErrBadCode) {
			t.Fatalf("%v, want ErrBadCode", err)
		}
		if _, err := enrollWith(n, "b@example.org", code); err != nil {
			t.Fatalf("right code after one wrong one: %v", err)
		}
	})
	t.Run("no code asked for", func(t *testing.T) {
		n := newTestNode(t)
		if _, err := enrollWith(n, "c@example.org", "12345678"); !errors.Is(err, ErrBadCode) {
			t.Fatalf("%v, want ErrBadCode", err)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		n := newTestNode(t)
		enrollWith(n, "d@example.org", "")
		code := mailed("d@example.org")
		clk.add(DefaultCodeLifetime + time.Second)
		if _, err := enrollWith(n, "d@example.org", code); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("%v, want ErrCodeExpired", err)
		}
		// A new code works.
		enrollWith(n, "d@example.org", "")
		if _, err := enrollWith(n, "d@example.org", mailed("d@example.org")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too many attempts", func(t *testing.T) {
		n := newTestNode(t)
		enrollWith(n, "e@example.org", "")
		code := mailed("e@example.org")
		for i := 1; i <= DefaultCodeAttempts; i++ {
			want := ErrBadCode
			if i == DefaultCodeAttempts {
				want = ErrTooManyAttempts
			}
			if _, err := enrollWith(n, "e@example.org", wrong(code)); !errors.Is(err, want) {
				t.Fatalf("attempt %d: %v, want %v", i, err, want)
			}
		}
		// The right code no longer helps; asking again within CodeResend
		// sends none, after it a new one.
		if _, err := enrollWith(n, "e@example.org", code); !errors.Is(err, ErrTooManyAttempts) {
			t.Fatalf("right code after the limit: %v", err)
		}
		clk.add(DefaultCodeResend)
		enrollWith(n, "e@example.org", "")
		if c := mailed("e@example.org"); c == code {
			t.Log("new code equals the old one (1 in 10^8)")
		} else if _, err := enrollWith(n, "e@example.org", c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no membership oracle", func(t *testing.T) {
		// Enrolled (a@) and never enrolled (z@) get the same answer.
		var answers []string
		for _, email := range []string{"a@example.org", "z@example.org"} {
			clk.add(DefaultCodeResend)
			n := newTestNode(t)
			q, err := NewEnrollRequest(tt.root, n.key, n.mkey, "Pat", email, clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := q.Encode()
			resp, err := http.Post(tt.url+PathEnroll, contentType, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			body := make([]byte, 512)
			k, _ := resp.Body.Read(body)
			resp.Body.Close()
			answers = append(answers, resp.Status+"|"+resp.Header.Get(errorHeader)+"|"+string(body[:k]))
		}
		if answers[0] != answers[1] {
			t.Fatalf("enrolled and not enrolled answered differently:\n%s\n%s", answers[0], answers[1])
		}
	})
	t.Run("squatting: another person's keys cannot take an e-mail", func(t *testing.T) {
		owner, mallory := newTestNode(t), newTestNode(t)
		enrollWith(owner, "f@example.org", "")
		first, err := enrollWith(owner, "f@example.org", mailed("f@example.org"))
		if err != nil {
			t.Fatal(err)
		}
		// Mallory asks; the code goes to f@'s mailbox, not to her.
		clk.add(DefaultCodeResend)
		if _, err := enrollWith(mallory, "f@example.org", ""); !errors.Is(err, ErrCodeSent) {
			t.Fatalf("%v, want ErrCodeSent", err)
		}
		for _, guess := range []string{"00000000", "12345678", "99999999"} {
			if _, err := enrollWith(mallory, "f@example.org", guess); !errors.Is(err, ErrBadCode) && !errors.Is(err, ErrTooManyAttempts) {
				t.Fatalf("guess %s: %v", guess, err)
			}
		}
		// The owner's certificates are not revoked, and renew.
		l, _ := tt.srv.RevocationList()
		if l.Revoked(first.NodeCert.Serial) {
			t.Fatal("squatting attempt revoked the owner")
		}
		if _, err := enrollWith(owner, "f@example.org", ""); err != nil {
			t.Fatalf("renewal by the owner: %v", err)
		}
	})
	t.Run("retry after a lost answer gets the committed enrollment", func(t *testing.T) {
		n := newTestNode(t)
		enrollWith(n, "g@example.org", "")
		code := mailed("g@example.org")
		first, err := enrollWith(n, "g@example.org", code)
		if err != nil {
			t.Fatal(err)
		}
		again, err := enrollWith(n, "g@example.org", code)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if again.NodeCert.Serial != first.NodeCert.Serial {
			t.Fatal("retry issued other certificates")
		}
		// With new keys (the client made new ones): not refused for good.
		m := newTestNode(t)
		if _, err := enrollWith(m, "g@example.org", code); !errors.Is(err, ErrBadCode) {
			t.Fatalf("used code, new keys: %v", err)
		}
		clk.add(DefaultCodeResend)
		enrollWith(m, "g@example.org", "")
		if _, err := enrollWith(m, "g@example.org", mailed("g@example.org")); err != nil {
			t.Fatalf("new keys with a new code: %v", err)
		}
	})
	t.Run("lost device: re-enroll, old certificates revoked at once", func(t *testing.T) {
		old, lost := newTestNode(t), newTestNode(t)
		enrollWith(old, "h@example.org", "")
		first, err := enrollWith(old, "h@example.org", mailed("h@example.org"))
		if err != nil {
			t.Fatal(err)
		}
		before, _ := tt.srv.RevocationList()
		clk.add(DefaultCodeResend)
		enrollWith(lost, "h@example.org", "")
		e, err := enrollWith(lost, "h@example.org", mailed("h@example.org"))
		if err != nil {
			t.Fatalf("re-enroll: %v", err)
		}
		if e.NodeCert.ID != first.NodeCert.ID {
			t.Error("the same person got another node ID")
		}
		l, err := client().FetchRevocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Revoked(first.NodeCert.Serial) || !l.Revoked(first.MatryoshkaCert.Serial) || l.Revoked(e.NodeCert.Serial) {
			t.Fatal("old certificates not revoked, or new ones revoked")
		}
		if l.Sequence <= before.Sequence {
			t.Fatalf("sequence %d, was %d", l.Sequence, before.Sequence)
		}
		// The old keys can no longer renew.
		if _, err := enrollWith(old, "h@example.org", ""); !errors.Is(err, ErrCodeSent) {
			t.Fatalf("old keys: %v, want ErrCodeSent", err)
		}
	})
	t.Run("blocked person", func(t *testing.T) {
		n := newTestNode(t)
		enrollWith(n, "i@example.org", "")
		e, err := enrollWith(n, "i@example.org", mailed("i@example.org"))
		if err != nil {
			t.Fatal(err)
		}
		if err := tt.srv.Revoke(e.NodeCert.Serial); err != nil {
			t.Fatal(err)
		}
		m := newTestNode(t)
		clk.add(DefaultCodeResend)
		if _, err := enrollWith(m, "i@example.org", ""); !errors.Is(err, ErrCodeSent) {
			t.Fatalf("blocked, no code: %v, want ErrCodeSent (no oracle)", err)
		}
		if _, err := enrollWith(m, "i@example.org", mailed("i@example.org")); !errors.Is(err, ErrBlocked) {
			t.Fatalf("blocked, with the code: %v, want ErrBlocked", err)
		}
	})
}

func TestNewServerNeedsMailer(t *testing.T) {
	dir := t.TempDir() + "/tis"
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	if s, err := NewServer(dir, ServerOptions{}); !errors.Is(err, ErrNoMailer) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("NewServer without a mailer: %v, want ErrNoMailer", err)
	}
}

func TestSecretApart(t *testing.T) {
	base := t.TempDir()
	dir, secretFile := base+"/tis", base+"/elsewhere/secret"
	if err := ensureDir(base + "/elsewhere"); err != nil {
		t.Fatal(err)
	}
	root, err := InitWithSecret(dir, secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("the directory alone opened: the secret is in it")
	}
	r, err := OpenWithSecret(dir, secretFile, nil)
	if err != nil || !r.PublicKey().Equal(root) {
		t.Fatalf("OpenWithSecret: %v", err)
	}
	s, err := NewServer(dir, ServerOptions{SecretFile: secretFile, OpenEnrollment: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
