package control_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/control/client"
	"github.com/pikcio/pikcio/web"
)

// statusBackend answers Status and NewIdentity, and counts the latter;
// everything else is unavailable (the node's tests cover the rest).
type statusBackend struct{ identities int }

func (b *statusBackend) Status() web.Status                   { return web.Status{Version: "test"} }
func (b *statusBackend) NewIdentity() bool                    { b.identities++; return true }
func (b *statusBackend) Contacts() ([]control.Contact, error) { return nil, control.ErrUnavailable }
func (b *statusBackend) Invite(string, time.Duration) (control.Invite, error) {
	return control.Invite{}, control.ErrUnavailable
}
func (b *statusBackend) Accept(context.Context, string, string) (control.Contact, error) {
	return control.Contact{}, control.ErrUnavailable
}
func (b *statusBackend) RemoveContact(string) (control.Contact, error) {
	return control.Contact{}, control.ErrUnavailable
}
func (b *statusBackend) Trust(q string) (*web.TrustReport, error) {
	switch q {
	case "none":
		return nil, web.ErrNoTrust
	case "unknown":
		return nil, fmt.Errorf("query %q: %w", q, web.ErrUnknownID)
	}
	return &web.TrustReport{Query: q}, nil
}
func (b *statusBackend) Enrollment() control.Enrollment { return control.Enrollment{} }

func noKey(control.Isolation) (string, error) { return "", errors.New("no pool") }

// serveTest serves b (nil: a statusBackend) with key (nil: noKey) on
// 127.0.0.1 with a client of it, both closed at the test's end.
func serveTest(t *testing.T, b control.Backend, key control.IsolationKeyFunc) (*control.Server, *client.Client) {
	t.Helper()
	if b == nil {
		b = &statusBackend{}
	}
	if key == nil {
		key = noKey
	}
	dir := t.TempDir()
	s, err := control.Listen("127.0.0.1:0", filepath.Join(dir, control.CookieFile), b, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c, err := client.ForDataDir(s.Addr().String(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return s, c
}

// The cookie file is mode 0600 and rotates at each start: a client with
// the previous cookie is refused. Both a loopback port and a Unix socket
// serve; a non-loopback TCP address is refused.
func TestCookieRotationAndListeners(t *testing.T) {
	dir := t.TempDir()
	cookie := filepath.Join(dir, control.CookieFile)
	for _, addr := range []string{"127.0.0.1:0", "unix:" + filepath.Join(dir, "control.sock")} {
		t.Run(addr, func(t *testing.T) {
			b := &statusBackend{}
			s1, err := control.Listen(addr, cookie, b, noKey)
			if err != nil {
				t.Fatal(err)
			}
			a := s1.Addr().String()
			if s1.Addr().Network() == "unix" {
				a = "unix:" + a
			}
			old, err := client.New(a, cookie)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if st, err := old.Status(ctx); err != nil || st.Version != "test" {
				t.Fatalf("status %+v, %v", st, err)
			}
			if err := old.NewIdentity(ctx); err != nil || b.identities != 1 {
				t.Fatalf("new identity: %v, %d calls", err, b.identities)
			}
			if fi, err := os.Stat(cookie); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("cookie %v %v", fi, err)
			}
			before, _ := os.ReadFile(cookie)
			_ = os.WriteFile(filepath.Join(dir, "before"), before, 0o600)
			if err := s1.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := control.Listen(addr, cookie, b, noKey)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			a = s2.Addr().String()
			if s2.Addr().Network() == "unix" {
				a = "unix:" + a
			}
			if c, err := client.New(a, filepath.Join(dir, "none")); err == nil {
				c.Close()
				t.Fatal("a client without a cookie file")
			}
			prev, _ := os.ReadFile(cookie)
			_ = os.WriteFile(filepath.Join(dir, "wrong"), []byte("0123"), 0o600)
			wrong, _ := client.New(a, filepath.Join(dir, "wrong"))
			defer wrong.Close()
			if _, err := wrong.Status(ctx); !client.IsStatus(err, http.StatusUnauthorized) {
				t.Fatalf("wrong cookie: %v, want 401", err)
			}
			fresh, _ := client.New(a, cookie)
			defer fresh.Close()
			if _, err := fresh.Status(ctx); err != nil {
				t.Fatalf("fresh cookie: %v", err)
			}
			// The previous start's cookie.
			old2, _ := client.New(a, filepath.Join(dir, "before"))
			defer old2.Close()
			if _, err := old2.Status(ctx); !client.IsStatus(err, http.StatusUnauthorized) {
				t.Fatalf("the previous start's cookie still works (file now %q)", prev)
			}
		})
	}
	if _, err := control.Listen("0.0.0.0:0", cookie, &statusBackend{}, noKey); err == nil {
		t.Fatal("listening on all interfaces")
	}
}

// An event stream ends when the server closes, and Close waits for it.
func TestEventsEndAtClose(t *testing.T) {
	s, c := serveTest(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Publish(control.Event{Type: control.EventNewIdentity})
	if e := <-events; e.Type != control.EventNewIdentity || e.Time.IsZero() {
		t.Fatalf("event %+v", e)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("an event after Close")
		}
	case <-ctx.Done():
		t.Fatal("the stream did not end at Close")
	}
}

// TestTrustAnswers: the trust query's errors choose the answer's status
// (an unknown ID 404, no [tis] 409), and a report comes back as JSON.
func TestTrustAnswers(t *testing.T) {
	_, c := serveTest(t, nil, nil)
	for _, tc := range []struct {
		query  string
		status int // 0: answered
	}{
		{"someone", 0},
		{"unknown", http.StatusNotFound},
		{"none", http.StatusConflict},
	} {
		t.Run(tc.query, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var rep web.TrustReport
			err := c.Trust(ctx, tc.query, &rep)
			if tc.status == 0 {
				if err != nil || rep.Query != tc.query {
					t.Fatalf("report %+v, %v", rep, err)
				}
				return
			}
			if !client.IsStatus(err, tc.status) {
				t.Fatalf("error %v, want status %d", err, tc.status)
			}
		})
	}
}
