package discovery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/testutil"
)

// loopbackExit is an exit dialer that reaches 127.0.0.1 only.
type loopbackExit struct{}

func (loopbackExit) DialExit(ctx context.Context, host string, port uint16) (net.Conn, error) {
	if host != "127.0.0.1" {
		return nil, fmt.Errorf("test exit dials loopback only, not %s", host)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
}

// echoServer accepts on 127.0.0.1 and echoes until closed.
func echoServer(t *testing.T) uint16 {
	port, _ := testutil.EchoServer(t)
	return port
}

// circuitBuild is CircuitBuild without a notHops.
func circuitBuild(c *circuit.Client) BuildFunc[*circuit.Circuit] { return CircuitBuild(c, nil) }

// TestCircuitThroughDiscoveredRelays builds 3-hop circuits through relays
// the client found only through the DHT, and carries data through them.
func TestCircuitThroughDiscoveredRelays(t *testing.T) {
	const n = 5
	ctx := testContext(t, 2*time.Minute)
	port := echoServer(t)

	boot, err := New(newHost(t), Server(), NoDiscovery())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	if err := boot.Start(ctx); err != nil {
		t.Fatal(err)
	}
	relays := make([]*Discovery, n)
	for i := range n {
		h := newHost(t)
		flags := FlagRelay | FlagGuard
		opts := circuit.DefaultRelayOptions()
		opts.AllowPrivateAddrs = true // on loopback
		var ports []PortRange
		if i%2 == 0 {
			flags |= FlagExit
			opts.Exit = loopbackExit{}
			ports = []PortRange{{port, port}}
		}
		cr, err := circuit.NewRelay(h, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cr.Close() })
		info := func() (RelayInfo, error) {
			k := cr.OnionKey()
			return RelayInfo{Flags: flags, OnionKey: OnionKey{Key: k.Public, Expires: k.Expires}, ExitPorts: ports}, nil
		}
		d, err := New(h, Publish(info), NoDiscovery(), Bootstrap(p2pAddrs(boot)...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		relays[i] = d
	}
	for _, d := range relays {
		if err := d.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}

	ch := newHost(t)
	client, err := New(ch, Bootstrap(p2pAddrs(boot)...), AllowSameSubnet(), RefreshInterval(time.Hour), DataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	discoverAll(t, client, n, 30*time.Second)
	cc := circuit.NewClient(ch, circuit.DefaultClientOptions())
	t.Cleanup(func() { cc.Close() })
	b := NewBuilder(client, circuitBuild(cc), BuilderOptions{})

	for i := range 3 {
		ci, path, err := b.Build(ctx, PathRequest{Port: port})
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		got := make([]string, 0, 3)
		for _, h := range ci.Path() {
			got = append(got, h.ID.String())
		}
		want := make([]string, 0, 3)
		for _, d := range path {
			want = append(want, d.PeerID.String())
		}
		if !slices.Equal(got, want) || len(path) != 3 {
			t.Fatalf("circuit path %v, selected %v", got, want)
		}
		s, err := ci.OpenStream(ctx, "127.0.0.1", port)
		if err != nil {
			t.Fatalf("open stream: %v", err)
		}
		msg := []byte(fmt.Sprintf("hello through %d hops, build %d", len(path), i))
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, len(msg))
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s, reply); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reply, msg) {
			t.Fatalf("echo %q, want %q", reply, msg)
		}
		s.Close()
		ci.Close()
	}
	t.Logf("3 circuits built; learned build timeout %v", b.Timeout())
}
