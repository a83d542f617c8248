package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

var (
	errBad      = errors.New("bad")
	errTooMany  = errors.New("too many")
	errRejected = errors.New("rejected")
	errMalform  = errors.New("malformed")
)

var codes = &Codes{
	Header: "Test-Error",
	Codes: []Code{
		{Err: errBad, Code: "bad", Status: http.StatusBadRequest},
		{Err: errTooMany, Code: "too-many", Status: http.StatusTooManyRequests},
	},
	Rejected:  errRejected,
	Malformed: errMalform,
}

func TestRefuseAndDo(t *testing.T) {
	log := logrus.WithField("component", "test")
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		max    int64
		want   error
		status int
	}{
		{"ok", func(w http.ResponseWriter) { w.Write([]byte("hello")) }, 5, nil, 200},
		{"over the cap", func(w http.ResponseWriter) { w.Write([]byte("hello!")) }, 5, errMalform, 200},
		{"known refusal, wrapped", func(w http.ResponseWriter) { codes.Refuse(w, log, fmt.Errorf("ctx: %w", errTooMany)) }, 5, errTooMany, 429},
		{"other failure", func(w http.ResponseWriter) { codes.Refuse(w, log, errors.New("disk")) }, 5, errRejected, 500},
		{"unknown code", func(w http.ResponseWriter) {
			w.Header().Set("Test-Error", "what")
			w.WriteHeader(http.StatusTeapot)
		}, 5, errRejected, 418},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.answer(w) }))
			t.Cleanup(srv.Close)
			if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
				t.Fatalf("test server on %s", srv.URL)
			}
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
				resp, err := http.DefaultTransport.RoundTrip(r)
				if resp != nil {
					status = resp.StatusCode
				}
				return resp, err
			})}
			b, err := codes.Do(hc, req, tc.max)
			if !errors.Is(err, tc.want) || status != tc.status {
				t.Fatalf("Do: %q, %v, status %d; want %v, %d", b, err, status, tc.want, tc.status)
			}
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
