package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
)

// pipeDialer answers each Dial with err, or with its end of a pipe whose
// other end writes data (if any) and then closes with readErr.
type pipeDialer struct {
	err     error
	data    string
	readErr error
}

func (d pipeDialer) Dial(ctx context.Context, _, _ string, _ uint16) (net.Conn, error) {
	if d.err != nil {
		return nil, d.err
	}
	return &scriptConn{data: d.data, err: d.readErr}, nil
}

// scriptConn reads data, then err.
type scriptConn struct {
	net.Conn
	data string
	err  error
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.data != "" {
		n := copy(p, c.data)
		c.data = c.data[n:]
		return n, nil
	}
	return 0, c.err
}

func (c *scriptConn) Close() error { return nil }

func TestFailureKind(t *testing.T) {
	tests := []struct {
		err         error
		kind, msg   string
		known, fail bool
	}{
		{fmt.Errorf("exit: %w", endreason.ErrPolicy), "policy", endreason.ErrPolicy.Error(), true, true},
		{fmt.Errorf("a.example: %w", endreason.ErrResolve), "resolve", endreason.ErrResolve.Error(), true, true},
		{endreason.ErrRefused, "refused", endreason.ErrRefused.Error(), true, true},
		{proxy.ErrNoCircuit, "circuit", proxy.ErrNoCircuit.Error(), true, true},
		{context.DeadlineExceeded, "timeout", context.DeadlineExceeded.Error(), true, true},
		{errors.New("secret.example:443 broke"), "dial", "connection failed", false, true},
		{context.Canceled, "", "", false, false},
		{proxy.ErrClosed, "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			kind, msg, known, fail := proxy.FailureKind(tt.err)
			if kind != tt.kind || msg != tt.msg || known != tt.known || fail != tt.fail {
				t.Fatalf("FailureKind = %q, %q, %v, %v; want %q, %q, %v, %v", kind, msg, known, fail, tt.kind, tt.msg, tt.known, tt.fail)
			}
		})
	}
}

// TestRecordFailures: failed dials are recorded with their kind and
// destination, a stream whose first read fails with a known kind too,
// and streams that deliver data, end cleanly or fail of an unknown kind
// on read are not.
func TestRecordFailures(t *testing.T) {
	tests := []struct {
		name string
		d    pipeDialer
		want string // "kind|msg|dest", "" for no record
	}{
		{"dial refused", pipeDialer{err: endreason.ErrRefused}, "refused|" + endreason.ErrRefused.Error() + "|a.example:80"},
		{"dial other", pipeDialer{err: errors.New("x")}, "dial|connection failed|a.example:80"},
		{"dial canceled", pipeDialer{err: context.Canceled}, ""},
		{"first read policy", pipeDialer{readErr: endreason.ErrPolicy}, "policy|" + endreason.ErrPolicy.Error() + "|a.example:80"},
		{"first read unknown", pipeDialer{readErr: errors.New("reset")}, ""},
		{"first read EOF", pipeDialer{readErr: io.EOF}, ""},
		{"data then error", pipeDialer{data: "hi", readErr: endreason.ErrTimeout}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			d := proxy.RecordFailures(tt.d, func(kind, msg, dest string) { got = append(got, kind+"|"+msg+"|"+dest) })
			c, err := d.Dial(t.Context(), "", "a.example", 80)
			if err == nil {
				buf := make([]byte, 8)
				for range 3 {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("recorded %q, want %q", got, want)
			}
		})
	}
}

func TestTimeFirstByte(t *testing.T) {
	tests := []struct {
		name string
		d    pipeDialer
		want int
	}{
		{"data", pipeDialer{data: "hello", readErr: io.EOF}, 1},
		{"no data", pipeDialer{readErr: io.EOF}, 0},
		{"dial fails", pipeDialer{err: endreason.ErrRefused}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			d := proxy.TimeFirstByte(tt.d, func(d time.Duration) { got = append(got, d) })
			if c, err := d.Dial(t.Context(), "", "a.example", 80); err == nil {
				_, _ = io.ReadAll(c)
			}
			if len(got) != tt.want {
				t.Fatalf("observed %v, want %d", got, tt.want)
			}
		})
	}
}

type fakeResolver struct{}

func (fakeResolver) Resolve(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
}

func (fakeResolver) ResolvePTR(context.Context, string, netip.Addr) (string, error) {
	return "a.example", nil
}

// TestWithResolver: the observing wrappers are no Resolver (the SOCKS
// server would answer RESOLVE through a Dialer that cannot), WithResolver
// is.
func TestWithResolver(t *testing.T) {
	d := proxy.TimeFirstByte(proxy.WithResolver(pipeDialer{}, fakeResolver{}), func(time.Duration) {})
	if _, ok := d.(proxy.Resolver); ok {
		t.Fatal("an observing wrapper is a Resolver")
	}
	r, ok := proxy.WithResolver(d, fakeResolver{}).(proxy.Resolver)
	if !ok {
		t.Fatal("WithResolver is no Resolver")
	}
	if addrs, err := r.Resolve(t.Context(), "", "a.example"); err != nil || len(addrs) != 1 {
		t.Fatalf("Resolve = %v, %v", addrs, err)
	}
}

// TestIsolationKeyFor: the control API's isolation names give the keys
// the listeners compute: SOCKS credentials and HTTP Basic credentials with
// the same username and password share a credential key but never a
// listener, and no credentials are the listener's default group.
func TestIsolationKeyFor(t *testing.T) {
	tests := []struct {
		proxy, user, pass string
		want              string
	}{
		{"socks", "", "", proxy.SOCKSIsolationKey(false, "", "")},
		{"socks", "a", "b", proxy.SOCKSIsolationKey(true, "a", "b")},
		{"socks", "", "b", proxy.SOCKSIsolationKey(true, "", "b")},
		{"http", "", "", proxy.HTTPIsolationKey("")},
		{"http", "a", "b", proxy.HTTPIsolationKey("Basic YTpi")},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got, err := proxy.IsolationKeyFor(tt.proxy, tt.user, tt.pass)
		if err != nil || got != tt.want {
			t.Errorf("IsolationKeyFor(%q, %q, %q) = %q, %v; want %q", tt.proxy, tt.user, tt.pass, got, err, tt.want)
		}
		if seen[got] {
			t.Errorf("key %q twice", got)
		}
		seen[got] = true
	}
	if _, err := proxy.IsolationKeyFor("ftp", "", ""); err == nil {
		t.Error("IsolationKeyFor of an unknown proxy: no error")
	}
}
