package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"golang.org/x/net/dns/dnsmessage"
)

// exitOnlyName resolves only at the exits' DNS server.
const exitOnlyName = "exit-only.test"

// dnsServer is a real DNS server on 127.0.0.1 (UDP) that knows
// exitOnlyName: A 127.0.0.1, AAAA ::1, and the PTR of 127.0.0.2 (not in /etc/hosts).
type dnsServer struct {
	pc      net.PacketConn
	queries atomic.Int32
}

func newDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return s
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		s.queries.Add(1)
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.EnableCompression()
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		name := q.Name.String()
		switch {
		case name == exitOnlyName+"." && q.Type == dnsmessage.TypeA:
			_ = b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
		case name == exitOnlyName+"." && q.Type == dnsmessage.TypeAAAA:
			_ = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: netip.IPv6Loopback().As16()})
		case name == "2.0.0.127.in-addr.arpa." && q.Type == dnsmessage.TypePTR:
			_ = b.PTRResource(rh, dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(exitOnlyName + ".")})
		}
		msg, err := b.Finish()
		if err == nil {
			_, _ = s.pc.WriteTo(msg, from)
		}
	}
}

// resolver is a Go resolver that asks only this server.
func (s *dnsServer) resolver() *net.Resolver {
	addr := s.pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// socksResolve does a raw SOCKS5 RESOLVE (0xF0) or RESOLVE_PTR (0xF1) and
// returns the reply code and the bound address field (ATYP and address).
func socksResolve(t *testing.T, proxyAddr string, cmd byte, atyp byte, addr []byte) (byte, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req := []byte{5, 1, 0, 5, cmd, 0, atyp}
	if atyp == 3 {
		req = append(req, byte(len(addr)))
	}
	req = append(append(req, addr...), 0, 0)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(c)
	if len(all) < 2+4 || !bytes.Equal(all[:2], []byte{5, 0}) || all[2] != 5 {
		t.Fatalf("answer % x", all)
	}
	return all[3], all[5 : len(all)-2]
}

// TestSOCKSResolve: a raw RESOLVE and RESOLVE_PTR, and curl
// --socks5-hostname, get their answers from the exits' resolver through a
// circuit; the client's resolver is never asked.
func TestSOCKSResolve(t *testing.T) {
	dns := newDNSServer(t)
	n := startNet(t, 3, 1, func(o *localnet.Options) {
		o.Base.Relay.ExitPolicy = []string{"accept 127.0.0.1:*", "accept 127.0.0.2:*", "accept [::1]:*"}
		o.NodeOptions = func(i int, opts *node.Options) {
			if i == 2 {
				opts.ExitResolver = dns.resolver()
			}
		}
	})

	// From here on, any lookup through the process's resolver (the
	// client's) is counted and fails.
	var local atomic.Int32
	prev := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		local.Add(1)
		return nil, errors.New("test: the client must not resolve")
	}}
	t.Cleanup(func() { net.DefaultResolver = prev })
	socks := n.Client.SOCKSAddr().String()

	rep, bound := socksResolve(t, socks, 0xf0, 3, []byte(exitOnlyName))
	if rep != 0 {
		t.Fatalf("RESOLVE reply %#02x", rep)
	}
	switch {
	case bound[0] == 1 && bytes.Equal(bound[1:], []byte{127, 0, 0, 1}):
	case bound[0] == 4 && bytes.Equal(bound[1:], netip.IPv6Loopback().AsSlice()):
	default:
		t.Fatalf("RESOLVE answer % x, want 127.0.0.1 or ::1", bound)
	}
	rep, bound = socksResolve(t, socks, 0xf1, 1, []byte{127, 0, 0, 2})
	if rep != 0 || bound[0] != 3 || string(bound[2:]) != exitOnlyName {
		t.Fatalf("RESOLVE_PTR reply %#02x, answer %q", rep, bound)
	}
	if rep, _ = socksResolve(t, socks, 0xf0, 3, []byte("nowhere.test")); rep != 0x04 {
		t.Fatalf("RESOLVE of an unknown name: reply %#02x, want 0x04", rep)
	}

	if curl, err := exec.LookPath("curl"); err == nil {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "via the exit") })}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		// Only the IPv4 server exists: ask curl for that family's
		// answer, which the exit then connects to.
		url := "http://" + exitOnlyName + ":" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, "-q", "--silent", "--show-error", "--max-time", "20",
			"--socks5-hostname", socks, url).CombinedOutput()
		if err != nil || string(out) != "via the exit" {
			out2, err2 := exec.CommandContext(ctx, curl, "-q", "--silent", "--show-error", "--max-time", "20",
				"--socks5-hostname", socks, "http://"+l.Addr().String()+"/").CombinedOutput()
			t.Fatalf("curl: %v: %s (by address: %v %s)", err, out, err2, out2)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("curl is not installed; .ci/run installs it")
	}
	if local.Load() != 0 {
		t.Fatalf("the client's resolver was asked %d times", local.Load())
	}
	if dns.queries.Load() == 0 {
		t.Fatal("the exits' DNS server was never asked")
	}
}
