package integration

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestFailover: in a network of separate processes, the exit, the middle
// and then the guard of a running download are killed (SIGKILL). Each
// time the download fails within 5 s (curl exits with an error, it does
// not hang), and a new fetch succeeds within 2 s of the kill. The killed
// relay is restarted on its data directory before the next role, and the
// client knows every relay again within 10 s. Last, the exit of a
// download is frozen (SIGSTOP, a hung relay: its connections stay open):
// the links' liveness check ends the download within 5 s, and a new fetch
// succeeds within 5 s too (mostly about 1 s: the pool's learned BEGIN
// bound moves new streams to a circuit through another exit). The fetches
// start at the kill, while the download is still on.
func TestFailover(t *testing.T) {
	roles := []string{"exit", "middle", "guard", "frozen exit"}
	if testing.Short() {
		roles = roles[:1]
	}
	pn := startProcNet(t, 7, 3)
	endless, started := endlessServer(t)
	small, body := fileServer(t, 64<<10)
	f := newFetcher(t, pn.socks, 10*time.Second)
	curlPath := needCurl(t)
	// The client has been browsing: it has seen how soon exits answer,
	// which bounds how long a stream waits on a hung exit (the pool's
	// learned begin bound).
	for i := range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f.fetch(ctx, small, len(body))
		cancel()
		if err != nil {
			t.Fatalf("fetch %d before the kills: %v", i, err)
		}
	}

	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dl := exec.CommandContext(ctx, curlPath, "-q", "--silent", "--show-error", "--noproxy", "",
				"--socks5-hostname", pn.socks, "-o", "/dev/null", endless)
			dl.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
			if err := dl.Start(); err != nil {
				t.Fatal(err)
			}
			dlDone := make(chan error, 1)
			go func() { dlDone <- dl.Wait() }()
			select {
			case <-started:
			case <-time.After(20 * time.Second):
				t.Fatal("download did not start")
			}
			time.Sleep(500 * time.Millisecond)

			frozen := role == "frozen exit"
			hopRole := role
			failWithin, fetchWithin, knownWithin := 5*time.Second, 2*time.Second, 10*time.Second
			if frozen {
				// A new fetch mostly succeeds about 1 s after the
				// freeze (the pool's learned begin bound moves it to
				// another exit), but some retries also hang (16 runs
				// under load: 8 ms to 2.05 s, twice 3.0 and 4.0 s)
				// until the links' liveness check ends every circuit
				// through the hung relay, about 4 s after the freeze.
				// That check is the bound.
				hopRole, fetchWithin = "exit", failWithin
			}
			// The circuit carrying the download, and its relay in role.
			victim := -1
			for deadline := time.Now().Add(10 * time.Second); victim < 0 && time.Now().Before(deadline); {
				st, err := pn.getStatus()
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range st.Client.Circuits {
					if c.Streams == 0 {
						continue
					}
					for _, h := range c.Hops {
						if h.Role == hopRole {
							victim = pn.byID(h.PeerID)
						}
					}
				}
				if victim < 0 {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if victim < 0 {
				t.Fatalf("no circuit with a stream and a known %s", role)
			}
			var killed time.Time
			if frozen {
				if err := pn.relays[victim].p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				killed = time.Now()
				defer pn.relays[victim].p.cmd.Process.Signal(syscall.SIGCONT)
			} else {
				killed = pn.kill(victim)
			}
			t.Logf("%s: %s (%s) at %s", role, pn.relays[victim].name, pn.relays[victim].id, killed.UTC().Format("15:04:05.000"))

			// New fetches, one after another, from the kill on, while the
			// download fails: a browser opens new pages at once.
			fetched := make(chan time.Duration, 1)
			go func() {
				defer close(fetched)
				for time.Since(killed) < 20*time.Second && ctx.Err() == nil {
					fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
					err := f.fetch(fctx, small, len(body))
					fcancel()
					if err == nil {
						fetched <- time.Since(killed)
						return
					}
					t.Logf("fetch %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
				}
			}()
			defer func() {
				cancel()
				for range fetched {
				}
			}()

			select {
			case err := <-dlDone:
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("download through a killed %s ended with %v, want an error exit", role, err)
				}
				t.Logf("download failed %v after the kill (curl exit %d)", time.Since(killed).Round(time.Millisecond), ee.ExitCode())
				if took := time.Since(killed); took > failWithin {
					t.Errorf("download failed %v after the kill, want within %v", took, failWithin)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("download through a killed %s still running 15 s after the kill", role)
			}

			ok, fetchedOK := <-fetched
			if !fetchedOK {
				t.Fatal("no fetch succeeded within 20 s of the kill")
			}
			t.Logf("first fetch succeeded %v after the kill", ok.Round(time.Millisecond))
			if ok > fetchWithin {
				t.Errorf("first fetch succeeded %v after the kill, want within %v", ok, fetchWithin)
			}
			if frozen {
				return
			}

			pn.startRelay(victim)
			back := time.Now()
			t.Logf("%s back at %s", pn.relays[victim].name, back.UTC().Format("15:04:05.000"))
			for {
				st, err := pn.getStatus()
				if err == nil && st.Network.RelaysKnown == len(pn.relays) {
					break
				}
				if time.Since(back) > knownWithin {
					t.Fatalf("client knows %d of %d relays %v after the restart", st.Network.RelaysKnown, len(pn.relays), knownWithin)
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("all %d relays known %v after the restart", len(pn.relays), time.Since(back).Round(time.Millisecond))
		})
	}
}
