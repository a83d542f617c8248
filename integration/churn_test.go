package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// churnConfig is a churn scenario. The suite runs a short one; the fault
// benchmark (bench/churn) runs the through the environment:
// PIKCIO_CHURN_RELAYS, PIKCIO_CHURN_DURATION, PIKCIO_CHURN_EVERY.
type churnConfig struct {
	relays   int           // relay processes, the bootstrap relay included
	exits    int           // of them exits
	duration time.Duration // of the churn
	every    time.Duration // one relay killed and restarted this often
	down     time.Duration // how long a killed relay stays down
	fetch    time.Duration // a fetch starts this often
	settle   time.Duration // fetches go on this long after the churn
}

func churnFromEnv(t *testing.T) churnConfig {
	c := churnConfig{relays: 6, exits: 3, duration: 20 * time.Second, every: 5 * time.Second,
		down: time.Second, fetch: 200 * time.Millisecond, settle: 5 * time.Second}
	if testing.Short() {
		c.duration = 10 * time.Second
	}
	if v := os.Getenv("PIKCIO_CHURN_RELAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 {
			t.Fatalf("PIKCIO_CHURN_RELAYS=%q", v)
		}
		c.relays, c.exits = n, n/2
	}
	for name, d := range map[string]*time.Duration{"PIKCIO_CHURN_DURATION": &c.duration, "PIKCIO_CHURN_EVERY": &c.every} {
		if v := os.Getenv(name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				t.Fatalf("%s=%q", name, v)
			}
			*d = x
		}
	}
	c.down = min(c.down, c.every/2)
	return c
}

type fetchRecord struct {
	start time.Time
	took  time.Duration
	err   error
}

// TestChurn: relay processes are killed (SIGKILL) and restarted on their
// data directories, one every few seconds, while a loop fetches 64 KiB
// through the client every 200 ms. Fetches keep succeeding (at least
// 95%, none slower than 5 s), the client knows every relay again within
// 10 s of the last restart, and its file descriptors and threads do not
// grow. It prints the success rate per window, the worst fetch and the
// time to recover after each kill.
func TestChurn(t *testing.T) {
	cfg := churnFromEnv(t)
	pn := startProcNet(t, cfg.relays, cfg.exits)
	url, body := fileServer(t, 64<<10)
	f := newFetcher(t, pn.socks, 10*time.Second)
	pid := pn.client.cmd.Process.Pid

	// Warm up, then take the client's counts.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 5 {
		_ = f.fetch(ctx, url, len(body))
	}
	fds0, threads0 := procCounts(pid)

	var (
		mu      sync.Mutex
		fetches []fetchRecord
		wg      sync.WaitGroup
	)
	stopFetch := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(cfg.fetch)
		defer tick.Stop()
		for {
			select {
			case <-stopFetch:
				return
			case <-tick.C:
			}
			start := time.Now()
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			err := f.fetch(fctx, url, len(body))
			fcancel()
			mu.Lock()
			fetches = append(fetches, fetchRecord{start, time.Since(start), err})
			mu.Unlock()
		}
	})

	began := time.Now()
	var kills []time.Time
	var lastUp time.Time
	for i := 0; ; i++ {
		victim := 1 + i%(cfg.relays-1) // the bootstrap relay stays
		kills = append(kills, pn.kill(victim))
		time.Sleep(cfg.down)
		pn.startRelay(victim)
		lastUp = time.Now()
		// No wait after the last restart: the time to know every relay
		// again is counted from it.
		next := kills[i].Add(cfg.every)
		if !next.Before(began.Add(cfg.duration)) {
			break
		}
		time.Sleep(time.Until(next))
	}
	churnEnd := time.Now()
	known := time.Duration(-1)
	for time.Since(lastUp) < 30*time.Second {
		st, err := pn.getStatus()
		if err == nil && st.Network.RelaysKnown == cfg.relays {
			known = time.Since(lastUp)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(cfg.settle)
	close(stopFetch)
	wg.Wait()
	fds1, threads1 := procCounts(pid)

	// Report.
	mu.Lock()
	defer mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "churn: %d relays, one killed every %v for %v (%d kills), a fetch every %v\n",
		cfg.relays, cfg.every, cfg.duration.Round(time.Second), len(kills), cfg.fetch)
	okAll, worst := 0, time.Duration(0)
	for w := began; w.Before(churnEnd.Add(cfg.settle)); w = w.Add(cfg.every) {
		n, ok := 0, 0
		var wworst time.Duration
		for _, r := range fetches {
			if !r.start.Before(w) && r.start.Before(w.Add(cfg.every)) {
				n++
				if r.err == nil {
					ok++
				}
				wworst = max(wworst, r.took)
			}
		}
		if n > 0 {
			fmt.Fprintf(&b, "  window %5.0fs: %3d/%3d ok (%5.1f%%), slowest %v\n", w.Sub(began).Seconds(), ok, n, 100*float64(ok)/float64(n), wworst.Round(time.Millisecond))
		}
	}
	var failures []string
	for _, r := range fetches {
		if r.err == nil {
			okAll++
		} else if len(failures) < 5 {
			failures = append(failures, fmt.Sprintf("%.1fs: %v", r.start.Sub(began).Seconds(), r.err))
		}
		worst = max(worst, r.took)
	}
	var recovers []string
	for i, k := range kills {
		next := churnEnd.Add(cfg.settle)
		if i+1 < len(kills) {
			next = kills[i+1]
		}
		lastFail := -1
		for j, r := range fetches {
			// A failure counts for the kill before it ended: a fetch
			// under way on the relay killed fails by that kill.
			if end := r.start.Add(r.took); end.After(k) && end.Before(next) && r.err != nil {
				lastFail = j
			}
		}
		rec := time.Duration(0)
		if lastFail >= 0 {
			rec = churnEnd.Add(cfg.settle).Sub(k) // never recovered
			for _, r := range fetches[lastFail+1:] {
				if r.err == nil {
					rec = r.start.Add(r.took).Sub(k)
					break
				}
			}
		}
		recovers = append(recovers, rec.Round(time.Millisecond).String())
	}
	rate := 100 * float64(okAll) / float64(max(len(fetches), 1))
	fmt.Fprintf(&b, "  total: %d/%d ok (%.2f%%), slowest fetch %v\n", okAll, len(fetches), rate, worst.Round(time.Millisecond))
	fmt.Fprintf(&b, "  recovery after each kill (0s: no fetch failed): %s\n", strings.Join(recovers, " "))
	fmt.Fprintf(&b, "  all %d relays known %v after the last restart\n", cfg.relays, known.Round(time.Millisecond))
	fmt.Fprintf(&b, "  client fds %d -> %d, threads %d -> %d\n", fds0, fds1, threads0, threads1)
	if len(failures) > 0 {
		fmt.Fprintf(&b, "  first failures: %s\n", strings.Join(failures, "; "))
	}
	fmt.Print(b.String()) // shown with -v, and when the test fails

	if rate < 95 {
		t.Errorf("%.2f%% of fetches succeeded, want at least 95%%", rate)
	}
	if worst > 5*time.Second {
		t.Errorf("slowest fetch %v, want at most 5 s", worst)
	}
	if known < 0 || known > 10*time.Second {
		t.Errorf("all relays known %v after the last restart, want within 10 s", known)
	}
	if fds1 > fds0+32 || threads1 > threads0+8 {
		t.Errorf("client grew from %d fds, %d threads to %d, %d", fds0, threads0, fds1, threads1)
	}
}
