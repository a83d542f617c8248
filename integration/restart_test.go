package integration

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestCleanRestart: in a network of three relays, where every circuit goes
// through all of them, a relay stopped cleanly (SIGTERM) and started again
// two seconds later on its data directory (same identity and onion key, a
// new port) is used again within 10 s of being back. Before, its new onion
// key failed the handshake and its down mark kept it out for 10 minutes.
func TestCleanRestart(t *testing.T) {
	pn := startProcNet(t, 3, 1)
	url, body := fileServer(t, 64<<10)
	f := newFetcher(t, pn.socks, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.fetch(ctx, url, len(body)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} { // the exit, then the other relay
		r := pn.relays[i]
		if code, _ := r.p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM", r.name, code)
		}
		time.Sleep(2 * time.Second)
		pn.startRelay(i)
		back := time.Now()
		for {
			fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
			err := f.fetch(fctx, url, len(body))
			fcancel()
			if err == nil {
				break
			}
			if time.Since(back) > 10*time.Second {
				t.Fatalf("no fetch through the restarted %s within 10 s: %v", r.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s used again %v after it was back", r.name, time.Since(back).Round(time.Millisecond))
	}
}
