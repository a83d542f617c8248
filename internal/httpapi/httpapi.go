// Package httpapi holds the two ends of pikcio's small binary HTTP APIs
// (the TIS's): a server answers a refusal with a status and a code in a
// header, and the client turns the code back into the sentinel error, so
// callers branch with errors.Is on either side.
package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// Code ties a sentinel error to its wire code and HTTP status.
type Code struct {
	Err    error
	Code   string
	Status int
}

// Codes is one API's refusals.
type Codes struct {
	// Name names the server in errors and the requests in logs
	// ("TIS", "enrollment"); "" is "server" and "request".
	Name, What string
	// Header carries the code.
	Header string
	// Codes lists the refusals; the first whose Err matches wins.
	Codes []Code
	// Rejected is what the client returns for a refusal without a known
	// code; Malformed for an answer over its cap.
	Rejected, Malformed error
	// Timeout bounds a request when Do is given no client.
	Timeout time.Duration
}

// Refuse answers err: its code and status if it matches one (logged at
// debug), else 500 (logged as an error; the message stays on the server).
func (c *Codes) Refuse(w http.ResponseWriter, log *logrus.Entry, err error) {
	for _, e := range c.Codes {
		if errors.Is(err, e.Err) {
			log.WithError(err).Debug(c.what() + " refused")
			w.Header().Set(c.Header, e.Code)
			http.Error(w, e.Err.Error(), e.Status)
			return
		}
	}
	log.WithError(err).Error(c.what() + " failed")
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// Do sends req with hc (nil: a client with Timeout) and returns a 200
// body of at most max bytes; a refusal becomes the sentinel its code names.
func (c *Codes) Do(hc *http.Client, req *http.Request, max int64) ([]byte, error) {
	if hc == nil {
		hc = &http.Client{Timeout: c.Timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		code := resp.Header.Get(c.Header)
		for _, e := range c.Codes {
			if e.Code == code {
				return nil, fmt.Errorf("%s answered %s: %w", c.name(), resp.Status, e.Err)
			}
		}
		return nil, fmt.Errorf("%s answered %s: %w", c.name(), resp.Status, c.Rejected)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("answer over %d bytes: %w", max, c.Malformed)
	}
	return b, nil
}

func (c *Codes) name() string {
	if c.Name == "" {
		return "server"
	}
	return c.Name
}

func (c *Codes) what() string {
	if c.What == "" {
		return "request"
	}
	return c.What
}
