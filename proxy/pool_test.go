package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// echoServer is a TCP echo server on 127.0.0.1.
func echoServer(t testing.TB) uint16 {
	port, _ := testutil.EchoServer(t)
	return port
}

// fakeClock is a settable clock for the pool.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type poolEnv struct {
	b     *proxytest.Builder
	p     *proxy.Pool
	clock *fakeClock
	port  uint16
}

func newPoolEnv(t *testing.T, opts proxy.PoolOptions, start bool) *poolEnv {
	t.Helper()
	e := &poolEnv{b: proxytest.NewBuilder(), clock: &fakeClock{now: time.Unix(1e9, 0)}, port: echoServer(t)}
	e.p = proxy.NewPool(e.b.Build, opts)
	proxy.SetPoolClock(e.p, e.clock.Now)
	if start {
		e.p.Start()
	}
	t.Cleanup(func() { _ = e.p.Close() })
	return e
}

// dial opens a stream for key and checks that it echoes.
func (e *poolEnv) dial(t *testing.T, key string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.p.Dial(ctx, key, proxytest.ExitOnlyName, e.port)
	if err != nil {
		t.Fatalf("dial %q: %v", key, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	echo(t, c)
	return c
}

func echo(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q, %v", b, err)
	}
}

// openedOn maps circuit IDs to the number of stream opens they saw.
func openedOn(b *proxytest.Builder) map[int]int {
	m := map[int]int{}
	for _, c := range b.Circuits() {
		if n := len(c.Opened()); n > 0 {
			m[c.ID] = n
		}
	}
	return m
}

func TestPoolPrebuiltUsedWithoutBuild(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 2}, true)
	waitFor(t, "2 prebuilt circuits", func() bool { return e.p.Stats().Clean == 2 })
	if n := e.b.Builds(); n != 2 {
		t.Fatalf("%d builds, want 2", n)
	}
	// From now on a build never finishes: the dials below must use the
	// prebuilt circuits.
	e.b.SetBuildHook(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	e.dial(t, "a")
	e.dial(t, "b")
	if n := e.b.Builds(); n != 2 {
		t.Fatalf("%d builds, want 2", n)
	}
	got := openedOn(e.b)
	if got[1] != 1 || got[2] != 1 {
		t.Fatalf("opens per circuit %v", got)
	}
	// The builder is replacing the claimed circuits.
	waitFor(t, "replacement builds", func() bool { return e.p.Stats().Building == 2 })
}

func TestPoolDirtiness(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1, Dirtiness: time.Minute}, false)
	s1 := e.dial(t, "a")
	e.clock.Advance(59 * time.Second)
	s2 := e.dial(t, "a")
	if got := openedOn(e.b); got[1] != 2 || len(got) != 1 {
		t.Fatalf("before dirtiness: opens %v", got)
	}
	e.clock.Advance(time.Second)
	s3 := e.dial(t, "a")
	if got := openedOn(e.b); got[1] != 2 || got[2] != 1 {
		t.Fatalf("after dirtiness: opens %v", got)
	}
	c1 := e.b.Circuits()[0]
	snap := e.p.Snapshot()
	if len(snap) != 2 || !snap[0].Dirty || !snap[0].Retired || snap[0].Streams != 2 || snap[1].Retired {
		t.Fatalf("snapshot %+v", snap)
	}
	// The dirty circuit keeps its streams and closes with the last one.
	echo(t, s1)
	_ = s1.Close()
	if c1.Closed() {
		t.Fatal("dirty circuit closed with a stream open")
	}
	echo(t, s2)
	_ = s2.Close()
	if !c1.Closed() {
		t.Fatal("dirty circuit still open after its last stream")
	}

	// Hot reload: a shorter dirtiness applies at the next use.
	_ = s3.Close()
	if e.b.Circuits()[1].Closed() {
		t.Fatal("circuit closed before it was dirty")
	}
	e.p.SetDirtiness(10 * time.Second)
	e.clock.Advance(10 * time.Second)
	e.dial(t, "a")
	if got := openedOn(e.b); got[3] != 1 {
		t.Fatalf("after SetDirtiness: opens %v", got)
	}
	// circuit 2 had no stream open: it closed as soon as it was found dirty.
	if !e.b.Circuits()[1].Closed() {
		t.Fatal("idle dirty circuit not closed")
	}
}

func TestPoolNewIdentity(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 1}, true)
	waitFor(t, "a prebuilt circuit", func() bool { return e.p.Stats().Clean == 1 })
	s1 := e.dial(t, "a")
	waitFor(t, "a second prebuilt circuit", func() bool { return e.p.Stats().Clean == 1 })
	cs := e.b.Circuits()
	e.p.NewIdentity()
	// The clean circuit closed at once; the used one waits for its stream.
	if !cs[1].Closed() || cs[0].Closed() {
		t.Fatalf("closed: used %v, clean %v", cs[0].Closed(), cs[1].Closed())
	}
	for _, ci := range e.p.Snapshot() {
		if ci.ID <= 2 && !ci.Retired {
			t.Fatalf("circuit %d not retired", ci.ID)
		}
	}
	e.dial(t, "a")
	if got := openedOn(e.b); got[1] != 1 || len(got) != 2 {
		t.Fatalf("after new identity: opens %v", got)
	}
	echo(t, s1) // open streams continue
	_ = s1.Close()
	if !cs[0].Closed() {
		t.Fatal("retired circuit still open after its last stream")
	}
}

func TestPoolDeadCircuitReplaced(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 1}, true)
	waitFor(t, "a prebuilt circuit", func() bool { return e.p.Stats().Clean == 1 })
	s1 := e.dial(t, "a")
	waitFor(t, "a second prebuilt circuit", func() bool { return e.p.Stats().Clean == 1 && e.b.Builds() == 2 })
	c1 := e.b.Circuits()[0]
	c1.Die()
	// The stream on the dead circuit fails: the one failed connection.
	_ = s1.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s1.Read(make([]byte, 1)); err == nil {
		t.Fatal("stream on a dead circuit still readable")
	}
	waitFor(t, "the dead circuit dropped", func() bool {
		for _, ci := range e.p.Snapshot() {
			if ci.ID == 1 {
				return false
			}
		}
		return true
	})
	// The next connection works, on the prebuilt circuit, and the builder
	// keeps one clean circuit ready.
	e.dial(t, "a")
	if got := openedOn(e.b); got[2] != 1 {
		t.Fatalf("opens %v", got)
	}
	waitFor(t, "a replacement", func() bool { return e.p.Stats().Clean == 1 && e.b.Builds() == 3 })
}

func TestPoolRetry(t *testing.T) {
	checkLeaks(t)
	t.Run("circuit dies under the dial", func(t *testing.T) {
		e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1}, false)
		e.dial(t, "a")
		e.b.Circuits()[0].DieOnOpen()
		e.dial(t, "a") // no failure for the user
		if got := openedOn(e.b); got[1] != 2 || got[2] != 1 {
			t.Fatalf("opens %v", got)
		}
		if s := e.p.Stats(); s.Retries != 1 {
			t.Fatalf("retries %d", s.Retries)
		}
	})
	t.Run("a bounded number of times", func(t *testing.T) {
		e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1}, false)
		e.b.FailHost(proxytest.ExitOnlyName, errors.New("link lost"))
		_, err := e.p.Dial(context.Background(), "a", proxytest.ExitOnlyName, e.port)
		if err == nil {
			t.Fatal("dial succeeded")
		}
		if got := openedOn(e.b); len(got) != 4 || got[1] != 1 || got[4] != 1 {
			t.Fatalf("opens %v, want one on each of four circuits", got)
		}
	})
	for _, sentinel := range []error{endreason.ErrRefused, endreason.ErrPolicy, endreason.ErrResolve,
		endreason.ErrUnreachable, endreason.ErrTimeout, endreason.ErrMisc} {
		t.Run("no retry on "+sentinel.Error(), func(t *testing.T) {
			e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1}, false)
			e.b.FailHost(proxytest.ExitOnlyName, sentinel)
			_, err := e.p.Dial(context.Background(), "a", proxytest.ExitOnlyName, e.port)
			if !errors.Is(err, sentinel) {
				t.Fatalf("err %v", err)
			}
			if got := openedOn(e.b); got[1] != 1 || len(got) != 1 {
				t.Fatalf("opens %v", got)
			}
			if s := e.p.Snapshot(); len(s) != 1 || s[0].Retired {
				t.Fatalf("circuit retired after an exit-reported error: %+v", s)
			}
		})
	}
	t.Run("retry on not-an-exit", func(t *testing.T) {
		e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1}, false)
		e.b.FailHost(proxytest.ExitOnlyName, endreason.ErrNotExit)
		_, err := e.p.Dial(context.Background(), "a", proxytest.ExitOnlyName, e.port)
		if !errors.Is(err, endreason.ErrNotExit) {
			t.Fatalf("err %v", err)
		}
		if got := openedOn(e.b); len(got) != 4 {
			t.Fatalf("opens %v", got)
		}
	})
}

func TestPoolIsolation(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 2}, true)
	waitFor(t, "2 prebuilt circuits", func() bool { return e.p.Stats().Clean == 2 })
	// a and b claim the prebuilt circuits 1 and 2 (in either order) while
	// builds are held back; "" gets a third one.
	release := make(chan struct{})
	e.b.SetBuildHook(func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	e.dial(t, "a")
	e.dial(t, "b")
	close(release)
	for _, key := range []string{"a", "", "", "b"} {
		e.dial(t, key)
	}
	got := openedOn(e.b)
	if len(got) != 3 || got[1] != 2 || got[2] != 2 {
		t.Fatalf("opens %v", got)
	}
	groups := map[int]int{}
	for _, ci := range e.p.Snapshot() {
		if ci.Streams > 0 {
			groups[ci.Group] += ci.Streams
		}
	}
	if len(groups) != 3 || groups[0] != 0 {
		t.Fatalf("streams per group %v", groups)
	}
	if s := e.p.Stats(); s.Groups != 3 || s.Streams != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPoolConcurrentDialsShareOneBuild(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1}, false)
	release := make(chan struct{})
	e.b.SetBuildHook(func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.p.Dial(context.Background(), "k", proxytest.ExitOnlyName, e.port)
			if err == nil {
				_ = c.Close()
			}
			errs <- err
		}()
	}
	waitFor(t, "one build in flight", func() bool { return e.p.Stats().Building == 1 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.b.Builds(); n != 1 {
		t.Fatalf("%d builds, want 1", n)
	}
}

func TestPoolMaxCircuits(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: -1, MaxCircuits: 2}, false)
	sa := e.dial(t, "a")
	e.dial(t, "b")
	_, err := e.p.Dial(context.Background(), "c", proxytest.ExitOnlyName, e.port)
	if !errors.Is(err, proxy.ErrTooManyCircuits) {
		t.Fatalf("err %v", err)
	}
	_ = sa.Close() // a's circuit is idle now: it gives way
	e.dial(t, "c")
	if !e.b.Circuits()[0].Closed() {
		t.Fatal("idle circuit not evicted")
	}
	if s := e.p.Stats(); s.Circuits != 2 {
		t.Fatalf("%d circuits", s.Circuits)
	}
}

func TestPoolBuildFailure(t *testing.T) {
	checkLeaks(t)
	// The hook is set before the pool starts: a prebuild that ran first
	// would succeed and leave nothing to fail.
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 1}, false)
	e.b.SetBuildHook(func(context.Context) error { return proxytest.ErrBuild })
	e.p.Start()
	waitFor(t, "a failed prebuild", func() bool { return e.p.Stats().BuildFailures >= 1 })
	_, err := e.p.Dial(context.Background(), "a", proxytest.ExitOnlyName, e.port)
	if !errors.Is(err, proxytest.ErrBuild) {
		t.Fatalf("err %v", err)
	}
	// Prebuilding backs off instead of spinning.
	time.Sleep(200 * time.Millisecond)
	if s := e.p.Stats(); s.BuildFailures > 3 {
		t.Fatalf("%d build failures in 200 ms", s.BuildFailures)
	}
	e.b.SetBuildHook(nil)
	e.dial(t, "a")
}

func TestPoolClose(t *testing.T) {
	checkLeaks(t)
	e := newPoolEnv(t, proxy.PoolOptions{Prebuilt: 2}, true)
	waitFor(t, "2 prebuilt circuits", func() bool { return e.p.Stats().Clean == 2 })
	// Builds that never finish on their own: Close must cancel them.
	e.b.SetBuildHook(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	s := e.dial(t, "a")
	e.dial(t, "b")
	dialErr := make(chan error, 1)
	go func() {
		_, err := e.p.Dial(context.Background(), "c", proxytest.ExitOnlyName, e.port)
		dialErr <- err
	}()
	waitFor(t, "2 prebuilds and a build for c", func() bool { return e.p.Stats().Building == 3 })
	done := make(chan struct{})
	go func() {
		_ = e.p.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-dialErr; err == nil {
		t.Fatal("dial during Close succeeded")
	}
	for _, c := range e.b.Circuits() {
		if !c.Closed() {
			t.Errorf("circuit %d not closed", c.ID)
		}
	}
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("stream alive after Close")
	}
	if _, err := e.p.Dial(context.Background(), "a", proxytest.ExitOnlyName, e.port); !errors.Is(err, proxy.ErrClosed) {
		t.Fatalf("dial after Close: %v", err)
	}
	_ = e.p.Close() // idempotent
}
