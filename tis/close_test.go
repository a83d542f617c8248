package tis

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseCutsSlowRequests: a request still running when the grace ends
// (a token batch on a loaded machine) is cut, Close reports no error,
// and its handler has returned before Close does, so that none runs on a
// closed store.
func TestCloseCutsSlowRequests(t *testing.T) {
	tt := newTestTIS(t, ServerOptions{})
	tt.srv.grace = 200 * time.Millisecond
	started := make(chan struct{})
	var returned atomic.Bool
	tt.srv.MountTokens(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
		time.Sleep(50 * time.Millisecond) // work after the cut
		returned.Store(true)
	}))
	reqDone := make(chan error, 1)
	go func() {
		resp, err := http.Get(tt.url + PathTokens + "/keys")
		if err == nil {
			resp.Body.Close()
		}
		reqDone <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not start")
	}
	begin := time.Now()
	if err := tt.srv.Close(); err != nil {
		t.Fatalf("Close with a request in flight: %v", err)
	}
	if !returned.Load() {
		t.Fatal("Close returned while a handler was still running")
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("Close took %v", took)
	}
	select {
	case err := <-reqDone:
		if err == nil {
			t.Fatal("the cut request got an answer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut request's client never returned")
	}
}
