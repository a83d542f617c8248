package exitnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/internal/testutil"
)

// resolverFunc is a Resolver for what a test cannot reach through
// /etc/hosts: DNS failures and chosen answers.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// answer resolves every name to addrs.
func answer(addrs ...string) resolverFunc {
	return func(context.Context, string, string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// dialerFunc is a Dialer for failures a test cannot cause on loopback.
type dialerFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

// recordingDialer dials for real and records every address it was asked for.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, network+" "+address)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

func (d *recordingDialer) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

var (
	_ Resolver = (*net.Resolver)(nil)
	_ Dialer   = (*net.Dialer)(nil)
	_ Resolver = resolverFunc(nil)
	_ Dialer   = dialerFunc(nil)
	_ Dialer   = (*recordingDialer)(nil)
)

// testCtx bounds a test's dials.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// server is a TCP listener on addr that greets each connection with name,
// then reads to EOF and answers "got:" and what it read. Cleanup stops it.
func server(t *testing.T, addr, name string) (port uint16) {
	t.Helper()
	a, _ := testutil.ServeOn(t, addr, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			return
		}
		data, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = c.Write(append([]byte("got:"), data...))
	})
	return uint16(a.Port)
}

// freePort returns a port of 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

// exchange reads the greeting, sends msg, half-closes and reads the answer.
func exchange(t *testing.T, conn net.Conn, msg string) (greeting, reply string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("DialExit returned %T, want *net.TCPConn", conn)
	}
	if err := tcp.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return strings.TrimSpace(string(buf[:n])), string(rest)
}

func TestDialExitConnects(t *testing.T) {
	port := server(t, "127.0.0.1:0", "one")
	e := New(Options{Policy: mustPolicy(t, "accept 127.0.0.1:*")})
	// localhost comes from /etc/hosts through the real resolver, which
	// answers ::ffff:127.0.0.1.
	for _, host := range []string{"127.0.0.1", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "localhost"} {
		t.Run(host, func(t *testing.T) {
			conn, err := e.DialExit(testCtx(t), host, port)
			if err != nil {
				t.Fatalf("DialExit: %v", err)
			}
			defer conn.Close()
			if got := conn.RemoteAddr().String(); got != "127.0.0.1:"+strconv.Itoa(int(port)) {
				t.Fatalf("connected to %s", got)
			}
			greeting, reply := exchange(t, conn, "hello")
			if greeting != "one" || reply != "got:hello" {
				t.Fatalf("exchange = %q, %q", greeting, reply)
			}
		})
	}
}

func TestDialExitRefused(t *testing.T) {
	port := freePort(t)
	e := New(Options{Policy: mustPolicy(t, "accept 127.0.0.1:*")})
	conn, err := e.DialExit(testCtx(t), "127.0.0.1", port)
	if err == nil {
		conn.Close()
		t.Fatal("DialExit to a closed port succeeded")
	}
	if !errors.Is(err, endreason.ErrRefused) || endreason.ReasonOf(err) != endreason.ReasonRefused {
		t.Fatalf("err = %v (reason %v), want endreason.ErrRefused", err, endreason.ReasonOf(err))
	}
	var de *DialError
	if !errors.As(err, &de) || de.Reason != endreason.ReasonRefused {
		t.Fatalf("err = %#v, want a *DialError", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("the cause %v is lost", de.Err)
	}
	if errors.Is(err, endreason.ErrPolicy) || errors.Is(err, endreason.ErrMisc) {
		t.Fatalf("err %v matches other sentinels", err)
	}
}

func TestDialExitPolicy(t *testing.T) {
	port := server(t, "127.0.0.1:0", "one")
	tests := []struct {
		host string
		port uint16
	}{
		{"127.0.0.1", port},
		{"localhost", port}, // resolved through /etc/hosts: DNS rebinding defence
		{"::ffff:127.0.0.1", port},
		{"[::ffff:127.0.0.1]", port},
		{"::127.0.0.1", port},
		{"[::1]", port},
		{"::1", port},
		{"0.0.0.0", port},
		{"64:ff9b::7f00:1", port},
		{"fe80::1%lo", port},
		{"8.8.8.8", 0},
		{"localhost", 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s:%d", tc.host, tc.port), func(t *testing.T) {
			d := &recordingDialer{}
			e := New(Options{Dialer: d})
			conn, err := e.DialExit(testCtx(t), tc.host, tc.port)
			if err == nil {
				conn.Close()
				t.Fatal("DialExit succeeded")
			}
			if !errors.Is(err, endreason.ErrPolicy) || endreason.ReasonOf(err) != endreason.ReasonPolicy {
				t.Fatalf("err = %v, want endreason.ErrPolicy", err)
			}
			if got := d.dialed(); len(got) != 0 {
				t.Fatalf("dialed %v", got)
			}
		})
	}
}

func TestDialExitResolvedAddresses(t *testing.T) {
	port := server(t, "127.0.0.1:0", "one")
	// A second server on the same port of 127.0.0.2, which the policy rejects.
	server(t, "127.0.0.2:"+strconv.Itoa(int(port)), "two")
	p := strconv.Itoa(int(port))

	tests := []struct {
		name     string
		policy   string
		resolver Resolver
		wantErr  error
		dialed   []string
	}{
		{
			name:     "rejected address skipped",
			policy:   "accept 127.0.0.1:*, reject 127.0.0.2:*",
			resolver: answer("127.0.0.2", "127.0.0.1"),
			dialed:   []string{"tcp4 127.0.0.1:" + p},
		},
		{
			name:     "mapped rejected address skipped",
			policy:   "accept 127.0.0.1:*",
			resolver: answer("::ffff:127.0.0.2", "::ffff:127.0.0.1"),
			dialed:   []string{"tcp4 127.0.0.1:" + p},
		},
		{
			name:     "next address after a refusal",
			policy:   "accept 127.0.0.0/8:*",
			resolver: answer("127.0.0.3", "127.0.0.1", "127.0.0.2"),
			dialed:   []string{"tcp4 127.0.0.3:" + p, "tcp4 127.0.0.1:" + p},
		},
		{
			name:     "duplicates dialed once",
			policy:   "accept 127.0.0.3:*",
			resolver: answer("127.0.0.3", "::ffff:127.0.0.3"),
			wantErr:  endreason.ErrRefused,
			dialed:   []string{"tcp4 127.0.0.3:" + p},
		},
		{
			name:     "all rejected",
			policy:   "accept 127.0.0.1:*",
			resolver: answer("127.0.0.2", "10.0.0.1", "::1"),
			wantErr:  endreason.ErrPolicy,
		},
		{
			name:     "no addresses",
			policy:   "accept 127.0.0.1:*",
			resolver: answer(),
			wantErr:  endreason.ErrResolve,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDialer{}
			e := New(Options{Policy: mustPolicy(t, tc.policy), Resolver: tc.resolver, Dialer: d})
			conn, err := e.DialExit(testCtx(t), "www.example.com", port)
			if tc.wantErr != nil {
				if err == nil {
					conn.Close()
					t.Fatal("DialExit succeeded")
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("DialExit: %v", err)
				}
				greeting, reply := exchange(t, conn, "x")
				conn.Close()
				if greeting != "one" || reply != "got:x" {
					t.Fatalf("exchange = %q, %q", greeting, reply)
				}
			}
			if got := d.dialed(); strings.Join(got, ",") != strings.Join(tc.dialed, ",") {
				t.Fatalf("dialed %v, want %v", got, tc.dialed)
			}
		})
	}
}

func TestDialExitResolveErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"not found", &net.DNSError{Err: "no such host", Name: "secret-destination.example", IsNotFound: true}, endreason.ErrResolve},
		{"server failure", &net.DNSError{Err: "server misbehaving", Name: "secret-destination.example", IsTemporary: true}, endreason.ErrResolve},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "secret-destination.example", IsTimeout: true}, endreason.ErrResolve},
		{"other failure", errors.New("resolver broke"), endreason.ErrResolve},
		{"deadline", context.DeadlineExceeded, endreason.ErrTimeout},
		{"canceled", context.Canceled, endreason.ErrMisc},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var dialed bool
			e := New(Options{
				Resolver: resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) { return nil, tc.err }),
				Dialer: dialerFunc(func(context.Context, string, string) (net.Conn, error) {
					dialed = true
					return nil, errors.New("unexpected dial")
				}),
			})
			_, err := e.DialExit(testCtx(t), "secret-destination.example", 443)
			if !errors.Is(err, tc.want) || endreason.ReasonOf(err) != endreason.ReasonOf(tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v does not keep its cause %v", err, tc.err)
			}
			if strings.Contains(err.Error(), "secret-destination") {
				t.Fatalf("error text %q names the host", err)
			}
			if dialed {
				t.Fatal("dialed after a failed resolution")
			}
		})
	}
}

func TestDialExitDialErrors(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp4",
			Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443},
			Err:  os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		name string
		err  error
		want endreason.Reason
	}{
		{"host unreachable", opErr(syscall.EHOSTUNREACH), endreason.ReasonUnreachable},
		{"network unreachable", opErr(syscall.ENETUNREACH), endreason.ReasonUnreachable},
		{"host down", opErr(syscall.EHOSTDOWN), endreason.ReasonUnreachable},
		{"refused", opErr(syscall.ECONNREFUSED), endreason.ReasonRefused},
		{"kernel timeout", opErr(syscall.ETIMEDOUT), endreason.ReasonTimeout},
		{"reset", opErr(syscall.ECONNRESET), endreason.ReasonMisc},
		{"access", opErr(syscall.EACCES), endreason.ReasonMisc},
		{"deadline", context.DeadlineExceeded, endreason.ReasonTimeout},
		{"plain error", errors.New("something else"), endreason.ReasonMisc},
		{"sentinel from dialer", fmt.Errorf("custom: %w", endreason.ErrUnreachable), endreason.ReasonUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Options{Dialer: dialerFunc(func(context.Context, string, string) (net.Conn, error) {
				return nil, tc.err
			})})
			_, err := e.DialExit(testCtx(t), "192.0.2.1", 443)
			if endreason.ReasonOf(err) != tc.want || !errors.Is(err, tc.want.Err()) {
				t.Fatalf("err = %v: reason %v, want %v", err, endreason.ReasonOf(err), tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v does not keep its cause", err)
			}
			if strings.Contains(err.Error(), "192.0.2.1") {
				t.Fatalf("error text %q names the destination", err)
			}
		})
	}
}

func TestDialExitTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	blocking := dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("dial without a deadline")
		}
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	})
	t.Run("connect", func(t *testing.T) {
		e := New(Options{Dialer: blocking, DialTimeout: timeout})
		_, err := e.DialExit(testCtx(t), "192.0.2.1", 443)
		if !errors.Is(err, endreason.ErrTimeout) || endreason.ReasonOf(err) != endreason.ReasonTimeout {
			t.Fatalf("err = %v, want endreason.ErrTimeout", err)
		}
	})
	t.Run("every address", func(t *testing.T) {
		var mu sync.Mutex
		var tried []string
		d := dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			tried = append(tried, address)
			mu.Unlock()
			return blocking(ctx, network, address)
		})
		// With 2s per address at least, three addresses need more than
		// DialTimeout: the first one takes it all.
		e := New(Options{Dialer: d, DialTimeout: timeout, Resolver: answer("192.0.2.1", "192.0.2.2", "192.0.2.3")})
		_, err := e.DialExit(testCtx(t), "www.example.com", 443)
		if !errors.Is(err, endreason.ErrTimeout) {
			t.Fatalf("err = %v, want endreason.ErrTimeout", err)
		}
		if len(tried) != 1 {
			t.Fatalf("tried %v after the deadline", tried)
		}
	})
	t.Run("resolve", func(t *testing.T) {
		e := New(Options{DialTimeout: timeout, Resolver: resolverFunc(func(ctx context.Context, _, _ string) ([]netip.Addr, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})})
		_, err := e.DialExit(testCtx(t), "www.example.com", 443)
		if !errors.Is(err, endreason.ErrTimeout) {
			t.Fatalf("err = %v, want endreason.ErrTimeout", err)
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		e := New(Options{Dialer: blocking}) // default 10s DialTimeout
		ctx, cancel := context.WithTimeout(testCtx(t), timeout)
		defer cancel()
		_, err := e.DialExit(ctx, "192.0.2.1", 443)
		if !errors.Is(err, endreason.ErrTimeout) {
			t.Fatalf("err = %v, want endreason.ErrTimeout", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		e := New(Options{Dialer: blocking})
		ctx, cancel := context.WithCancel(testCtx(t))
		time.AfterFunc(timeout, cancel)
		_, err := e.DialExit(ctx, "192.0.2.1", 443)
		if !errors.Is(err, endreason.ErrMisc) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want endreason.ErrMisc from cancellation", err)
		}
	})
}

func TestPartialDeadline(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		left time.Duration
		n    int
		want time.Duration
	}{
		{10 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 2, 5 * time.Second},
		{10 * time.Second, 10, 2 * time.Second},
		{time.Second, 3, time.Second},
	}
	for _, tc := range tests {
		if got := partialDeadline(now, now.Add(tc.left), tc.n).Sub(now); got != tc.want {
			t.Errorf("partialDeadline(%v, %d) = %v, want %v", tc.left, tc.n, got, tc.want)
		}
	}
}

func TestDialExitInvalidHost(t *testing.T) {
	hosts := []string{
		"", strings.Repeat("a", 256), "a b", "a\x00b", "a\nb", "a\tb", "exa mple.com", "ex/ample.com",
		"user@example.com", "example.com:443", "\u00e4.example", "[127.0.0.1]", "[::1", "[::1]x", "[]", "[",
		"example.com\x7f",
	}
	for _, host := range hosts {
		t.Run(fmt.Sprintf("%q", host), func(t *testing.T) {
			var resolved, dialed bool
			e := New(Options{
				Resolver: resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
					resolved = true
					return nil, errors.New("unexpected lookup")
				}),
				Dialer: dialerFunc(func(context.Context, string, string) (net.Conn, error) {
					dialed = true
					return nil, errors.New("unexpected dial")
				}),
			})
			_, err := e.DialExit(testCtx(t), host, 443)
			if !errors.Is(err, endreason.ErrMisc) || endreason.ReasonOf(err) != endreason.ReasonMisc {
				t.Fatalf("err = %v, want endreason.ErrMisc", err)
			}
			if resolved || dialed {
				t.Fatalf("invalid host went on (resolved %v, dialed %v)", resolved, dialed)
			}
		})
	}

	// The longest valid name is resolved.
	var got string
	e := New(Options{Resolver: resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		got = host
		return nil, &net.DNSError{IsNotFound: true}
	})})
	long := strings.Repeat("a-b_c.", 42) + "com"
	if _, err := e.DialExit(testCtx(t), long, 443); !errors.Is(err, endreason.ErrResolve) || got != long {
		t.Fatalf("255-byte name: err %v, resolved %q", err, got)
	}
}

func TestSetPolicy(t *testing.T) {
	port := server(t, "127.0.0.1:0", "one")
	e := New(Options{})
	if e.Policy().String() != DefaultPolicy(nil).String() {
		t.Fatal("New(Options{}) does not use the default policy")
	}
	dial := func() error {
		conn, err := e.DialExit(testCtx(t), "127.0.0.1", port)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(); !errors.Is(err, endreason.ErrPolicy) {
		t.Fatalf("default policy: %v, want endreason.ErrPolicy", err)
	}
	open := mustPolicy(t, "accept 127.0.0.1:*")
	e.SetPolicy(open)
	if e.Policy() != open {
		t.Fatal("Policy does not return the policy set")
	}
	if err := dial(); err != nil {
		t.Fatalf("after SetPolicy: %v", err)
	}
	e.SetPolicy(nil)
	if err := dial(); !errors.Is(err, endreason.ErrPolicy) {
		t.Fatalf("after SetPolicy(nil): %v, want endreason.ErrPolicy", err)
	}
}

func TestSetPolicyConcurrent(t *testing.T) {
	port := server(t, "127.0.0.1:0", "one")
	e := New(Options{})
	open, closed := mustPolicy(t, "accept 127.0.0.1:*"), DefaultPolicy(nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if i == 0 {
					e.SetPolicy([]*Policy{open, closed}[j%2])
					continue
				}
				conn, err := e.DialExit(context.Background(), "127.0.0.1", port)
				if err == nil {
					conn.Close()
				} else if !errors.Is(err, endreason.ErrPolicy) {
					t.Errorf("DialExit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestDialErrorText(t *testing.T) {
	port := freePort(t)
	host := "localhost"
	e := New(Options{Policy: mustPolicy(t, "accept 127.0.0.1:*")})
	_, err := e.DialExit(testCtx(t), host, port)
	if !errors.Is(err, endreason.ErrRefused) {
		t.Fatalf("err = %v, want endreason.ErrRefused", err)
	}
	text := err.Error()
	if strings.Contains(text, host) || strings.Contains(text, "127.0.0.1") || strings.Contains(text, strconv.Itoa(int(port))) {
		t.Fatalf("error text %q names the destination", text)
	}
	if want := "exit dial: connection refused by destination: connection refused"; text != want {
		t.Fatalf("error text %q, want %q", text, want)
	}

	_, err = New(Options{}).DialExit(testCtx(t), host, port)
	if text := err.Error(); strings.Contains(text, host) || strings.Contains(text, "127.0.0.1") {
		t.Fatalf("error text %q names the destination", text)
	}
}

func TestDefaultOptions(t *testing.T) {
	o := DefaultOptions()
	if o.Policy == nil || o.Resolver != net.DefaultResolver || o.DialTimeout != 10*time.Second {
		t.Fatalf("DefaultOptions = %+v", o)
	}
	if d, ok := o.Dialer.(*net.Dialer); !ok || d.KeepAlive != 30*time.Second {
		t.Fatalf("default Dialer = %#v", o.Dialer)
	}
	e := New(Options{})
	if e.timeout != 10*time.Second || e.resolver != net.DefaultResolver || e.dialer == nil || e.Policy() == nil {
		t.Fatalf("New(Options{}) = %+v", e)
	}
}

func TestDialExitNilConn(t *testing.T) {
	e := New(Options{Dialer: dialerFunc(func(context.Context, string, string) (net.Conn, error) { return nil, nil })})
	conn, err := e.DialExit(testCtx(t), "192.0.2.1", 443)
	if conn != nil || !errors.Is(err, endreason.ErrMisc) {
		t.Fatalf("DialExit = %v, %v; want endreason.ErrMisc", conn, err)
	}
}
