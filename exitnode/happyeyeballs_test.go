package exitnode

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestInterleave(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"::1", "::1"},
		{"::1 ::2 127.0.0.1 127.0.0.2", "::1 127.0.0.1 ::2 127.0.0.2"},
		{"127.0.0.1 127.0.0.2 127.0.0.3 ::1", "127.0.0.1 ::1 127.0.0.2 127.0.0.3"},
		{"10.0.0.1 ::1 10.0.0.2 ::2", "10.0.0.1 ::1 10.0.0.2 ::2"},
	} {
		var in []netip.Addr
		for _, s := range strings.Fields(tc.in) {
			in = append(in, netip.MustParseAddr(s))
		}
		var got []string
		for _, a := range interleave(in) {
			got = append(got, a.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("interleave(%s) = %v, want %s", tc.in, got, tc.want)
		}
	}
}

// listen6 listens on [::1], or skips when the machine has no IPv6 loopback.
func listen6(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// A name with both families: when the first family's attempt hangs (a
// black-holed route, which loopback cannot produce, so the dialer holds
// it), the other family is tried after the attempt delay and wins long
// before the hanging attempt would time out; a family that fails at once
// hands over at once; the hanging attempt is canceled.
func TestHappyEyeballs(t *testing.T) {
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	l6 := listen6(t)
	port4 := uint16(l4.Addr().(*net.TCPAddr).Port)
	port6 := uint16(l6.Addr().(*net.TCPAddr).Port)
	for _, l := range []net.Listener{l4, l6} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
	}
	policy, _ := ParseRules([]string{"accept 127.0.0.1:*", "accept [::1]:*"})

	for _, tc := range []struct {
		name    string
		answers []string
		port    uint16
		hang    string // network whose dials hang until canceled
		want    string // network of the connection
		minTime time.Duration
		maxTime time.Duration
	}{
		// The test servers listen on different ports per family, so each
		// case dials the port of the family that must win; the other
		// family's port is closed or hangs.
		{"ipv6 hangs, ipv4 wins", []string{"::1", "127.0.0.1"}, port4, "tcp6", "tcp4", attemptDelay, 5 * time.Second},
		{"ipv4 hangs, ipv6 wins", []string{"127.0.0.1", "::1"}, port6, "tcp4", "tcp6", attemptDelay, 5 * time.Second},
		{"ipv6 refused at once, ipv4 at once", []string{"::1", "127.0.0.1"}, port4, "", "tcp4", 0, attemptDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var canceled atomic.Int32
			var nd net.Dialer
			d := dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
				if network == tc.hang {
					<-ctx.Done()
					canceled.Add(1)
					return nil, ctx.Err()
				}
				return nd.DialContext(ctx, network, address)
			})
			var answers []netip.Addr
			for _, a := range tc.answers {
				answers = append(answers, netip.MustParseAddr(a))
			}
			e := New(Options{Policy: NewPolicy(policy, nil), Dialer: d, DialTimeout: 20 * time.Second,
				Resolver: resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) { return answers, nil })})
			start := time.Now()
			c, err := e.DialExit(testCtx(t), "both.test", tc.port)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			got := "tcp4"
			if c.RemoteAddr().(*net.TCPAddr).IP.To4() == nil {
				got = "tcp6"
			}
			if got != tc.want || took < tc.minTime || took > tc.maxTime {
				t.Fatalf("connected over %s after %v, want %s within [%v, %v]", got, took, tc.want, tc.minTime, tc.maxTime)
			}
			if tc.hang != "" && canceled.Load() != 1 {
				t.Fatalf("the hanging attempt was not canceled (%d)", canceled.Load())
			}
		})
	}
}

// Every address is tried when all fail, and the first attempt's error is
// the one reported.
func TestHappyEyeballsAllFail(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	rd := &recordingDialer{}
	policy, _ := ParseRules([]string{"accept 127.0.0.1:*", "accept 127.0.0.2:*", "accept [::1]:*"})
	e := New(Options{Policy: NewPolicy(policy, nil), Dialer: rd, Resolver: answer("127.0.0.1", "::1", "127.0.0.2")})
	_, err := e.DialExit(testCtx(t), "none.test", closed)
	if err == nil {
		t.Fatal("dial succeeded")
	}
	want := []string{
		"tcp4 127.0.0.1:" + strconv.Itoa(int(closed)),
		"tcp6 [::1]:" + strconv.Itoa(int(closed)),
		"tcp4 127.0.0.2:" + strconv.Itoa(int(closed)),
	}
	if got := rd.dialed(); !slices.Equal(got, want) {
		t.Fatalf("dialed %v, want %v", got, want)
	}
}
