package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/proxy"
)

// silentExit is an exit whose connects never finish: it takes a BEGIN and
// never answers it (until the relay's own connect timeout).
type silentExit struct {
	begins  atomic.Int64
	entered chan struct{} // gets a value for each BEGIN
}

func (s *silentExit) DialExit(ctx context.Context, _ string, _ uint16) (net.Conn, error) {
	s.begins.Add(1)
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestOptimisticReplay: a stream opened with optimistic data (the SOCKS
// port's early success) whose first exit never answers its BEGIN, or dies
// before answering, is opened again on another circuit through a second
// exit, with the bytes the application had written sent again: the
// application sees one stream, its data intact.
func TestOptimisticReplay(t *testing.T) {
	for _, tc := range []struct {
		name        string
		kill        bool // close the first exit once it holds the BEGIN
		size        int  // written at once; beyond 64 KiB waits for an answer
		wantTimeout uint64
	}{
		{name: "first exit never answers", size: 48 << 10, wantTimeout: 1},
		{name: "beyond what is kept", size: 200 << 10, wantTimeout: 1},
		{name: "first exit dies", kill: true, size: 48 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := exitnode.ParseRules([]string{"accept 127.0.0.1:*"})
			if err != nil {
				t.Fatal(err)
			}
			silent := &silentExit{entered: make(chan struct{}, 1)}
			var relays []*circuit.Relay
			for i := 0; i < 4; i++ {
				ro := circuit.RelayOptions{AllowPrivateAddrs: true}
				switch i {
				case 2:
					ro.Exit = silent
				case 3:
					o := exitnode.DefaultOptions()
					o.Policy = exitnode.NewPolicy(rules, nil)
					ro.Exit = exitnode.New(o)
				}
				r, err := circuit.NewRelay(newHost(t), ro)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = r.Close() })
				relays = append(relays, r)
			}
			guard, middle, first, second := relays[0].Hop(), relays[1].Hop(), relays[2].Hop(), relays[3].Hop()
			var firstDead atomic.Bool
			client := circuit.NewClient(newHost(t), circuit.ClientOptions{})
			t.Cleanup(func() { _ = client.Close() })
			pool := proxy.NewPool(func(ctx context.Context) (proxy.Circuit, error) {
				exit := first
				if firstDead.Load() || slices.Contains(proxy.AvoidExits(ctx), first.ID.String()) {
					exit = second
				}
				return client.Build(ctx, []circuit.Hop{guard, middle, exit})
			}, proxy.PoolOptions{Prebuilt: -1})
			t.Cleanup(func() { _ = pool.Close() })
			srv := proxy.NewServer(pool, proxy.ServerOptions{SOCKSEarlySuccess: true})
			t.Cleanup(func() { _ = srv.Close() })
			a, err := srv.ListenSOCKS("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port, _ := testutil.EchoServer(t)

			c := earlySOCKS(t, a.String(), int(port))
			// Written before any exit answered: what is kept goes
			// again, the rest waits.
			data := testutil.RandomBytes(t, tc.size)
			wrote := make(chan error, 1)
			go func() { _, err := c.Write(data); wrote <- err }()
			if tc.kill {
				select {
				case <-silent.entered:
				case <-time.After(30 * time.Second):
					t.Fatal("the first exit never got the BEGIN")
				}
				firstDead.Store(true)
				_ = relays[2].Close()
			}
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read the echo: %v (stats %+v)", err, pool.Stats())
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("the echo differs from what was written")
			}
			if n := silent.begins.Load(); n != 1 {
				t.Fatalf("%d BEGINs at the first exit, want 1", n)
			}
			st := pool.Stats()
			if st.Replays != 1 || st.BeginTimeouts != tc.wantTimeout {
				t.Fatalf("stats %+v, want 1 replay and %d begin timeouts", st, tc.wantTimeout)
			}
			// The stream goes on, on the second exit.
			if _, err := c.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, got[:4]); err != nil || string(got[:4]) != "more" {
				t.Fatalf("after the replay: %q, %v", got[:4], err)
			}
		})
	}
}
