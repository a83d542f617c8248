// Package client is a Go client of pikcio's control API (package control).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/web"
)

// Client talks to one node's control API.
type Client struct {
	base   string
	cookie string
	hc     *http.Client
}

// APIError is a failed request's status and message.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("control API: %d: %s", e.Status, e.Message) }

// New returns a client of the API at addr (host:port, or "unix:" and a
// socket path), authenticated with the cookie in cookieFile (control.cookie
// in the node's data directory).
func New(addr, cookieFile string) (*Client, error) {
	b, err := os.ReadFile(cookieFile)
	if err != nil {
		return nil, fmt.Errorf("read control cookie: %w", err)
	}
	c := &Client{cookie: strings.TrimSpace(string(b)), hc: &http.Client{}}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		c.base = "http://localhost"
		c.hc.Transport = &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}
	} else {
		c.base = "http://" + addr
		c.hc.Transport = &http.Transport{Proxy: nil}
	}
	return c, nil
}

// ForDataDir is New with the cookie of the node whose data directory is
// dir.
func ForDataDir(addr, dir string) (*Client, error) {
	return New(addr, filepath.Join(dir, control.CookieFile))
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cookie)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control API %s %s: decode: %w", method, path, err)
	}
	return nil
}

// apiError is the error of a failed answer.
func apiError(resp *http.Response) error {
	var e control.Error
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
	return &APIError{Status: resp.StatusCode, Message: e.Error}
}

// Status is the node's snapshot.
func (c *Client) Status(ctx context.Context) (web.Status, error) {
	var s web.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// NewIdentity retires every circuit for new streams.
func (c *Client) NewIdentity(ctx context.Context) error {
	var ok control.OK
	return c.do(ctx, http.MethodPost, "/v1/new-identity", struct{}{}, &ok)
}

// Circuit is the circuit serving an isolation group, nil if none yet.
func (c *Client) Circuit(ctx context.Context, iso control.Isolation) (*web.CircuitStatus, error) {
	var a control.CircuitAnswer
	err := c.do(ctx, http.MethodPost, "/v1/circuit", iso, &a)
	return a.Circuit, err
}

// NewCircuit retires the circuits of one isolation group only.
func (c *Client) NewCircuit(ctx context.Context, iso control.Isolation) (int, error) {
	var a control.NewCircuitAnswer
	err := c.do(ctx, http.MethodPost, "/v1/circuit/new", iso, &a)
	return a.Retired, err
}

// Contacts lists the contacts.
func (c *Client) Contacts(ctx context.Context) ([]control.Contact, error) {
	var list []control.Contact
	err := c.do(ctx, http.MethodGet, "/v1/contacts", nil, &list)
	return list, err
}

// Invite makes an invite code; lifetime "" is the default.
func (c *Client) Invite(ctx context.Context, name, lifetime string) (control.Invite, error) {
	var inv control.Invite
	err := c.do(ctx, http.MethodPost, "/v1/contacts/invite", control.InviteRequest{Name: name, Lifetime: lifetime}, &inv)
	return inv, err
}

// Accept accepts a friend's invite code.
func (c *Client) Accept(ctx context.Context, code, name string) (control.Contact, error) {
	var ct control.Contact
	err := c.do(ctx, http.MethodPost, "/v1/contacts/accept", control.AcceptRequest{Code: code, Name: name}, &ct)
	return ct, err
}

// RemoveContact forgets a contact named by its name or Matryoshka ID.
func (c *Client) RemoveContact(ctx context.Context, nameOrID string) (control.Contact, error) {
	var ct control.Contact
	err := c.do(ctx, http.MethodPost, "/v1/contacts/remove", control.RemoveRequest{Contact: nameOrID}, &ct)
	return ct, err
}

// Trust is the trust report of query, decoded into out.
func (c *Client) Trust(ctx context.Context, query string, out any) error {
	return c.do(ctx, http.MethodGet, "/v1/trust?q="+url.QueryEscape(query), nil, out)
}

// Enrollment is the node's TIS enrollment.
func (c *Client) Enrollment(ctx context.Context) (control.Enrollment, error) {
	var e control.Enrollment
	err := c.do(ctx, http.MethodGet, "/v1/enrollment", nil, &e)
	return e, err
}

// Events streams events until ctx ends or the stream does; the channel is
// closed then. The error of the opening request is returned at once.
func (c *Client) Events(ctx context.Context) (<-chan control.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cookie)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control API events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, apiError(resp)
	}
	ch := make(chan control.Event, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e control.Event
			if json.Unmarshal([]byte(data), &e) != nil {
				continue
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// IsStatus reports whether err is an APIError with that status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}
