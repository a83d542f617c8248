package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	golog "github.com/ipfs/go-log/v2"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
)

func TestMain(m *testing.M) {
	golog.SetAllLoggers(golog.LevelFatal)
	logrus.SetLevel(logrus.WarnLevel)
	os.Exit(m.Run())
}

// testConfig is a configuration for a node of a loopback test network:
// TCP only, its own data directory, listeners on free ports.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	c := config.Default()
	c.Node.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.Node.DataDir = filepath.Join(t.TempDir(), "data")
	c.Client.SOCKSListen = "127.0.0.1:0"
	c.Client.HTTPListen = "127.0.0.1:0"
	c.Client.StatusListen = "127.0.0.1:0"
	c.Log.Level = "warn"
	return c
}

func relayConfig(t testing.TB, exit bool, policy []string, boot []string) *config.Config {
	c := testConfig(t)
	c.Client.Enabled = false
	c.Client.SOCKSListen, c.Client.HTTPListen, c.Client.StatusListen = "", "", ""
	c.Relay.Enabled = true
	c.Relay.Exit = exit
	c.Relay.ExitPolicy = policy
	c.Node.Bootstrap = boot
	return c
}

// startNode makes and starts a node that the test closes at its end.
func startNode(t testing.TB, cfg *config.Config, opts Options) *Node {
	t.Helper()
	n, err := New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatalf("new node: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start node: %v", err)
	}
	return n
}

// testNet is a loopback network: relays[0] is where the others join
// (not an exit), the last `exits` relays are exits, and a client.
type testNet struct {
	relays []*Node
	client *Node
}

type netOpts struct {
	relays int
	exits  int
	policy []string
	// exit starts exit relay i from cfg; nil: startNode.
	exit func(t testing.TB, i int, cfg *config.Config) *Node
	// relay, if not nil, changes relay i's configuration before it starts.
	relay  func(i int, cfg *config.Config)
	client func(c *config.Config)
}

func newTestNet(t testing.TB, o netOpts) *testNet {
	t.Helper()
	n := &testNet{}
	var boot []string
	for i := range o.relays {
		exit := i >= o.relays-o.exits
		cfg := relayConfig(t, exit, o.policy, boot)
		if o.relay != nil {
			o.relay(i, cfg)
		}
		var nd *Node
		if exit && o.exit != nil {
			nd = o.exit(t, i, cfg)
		} else {
			nd = startNode(t, cfg, Options{})
		}
		n.relays = append(n.relays, nd)
		if i == 0 {
			for _, a := range nd.Addrs() {
				boot = append(boot, a.String())
			}
		}
	}
	cfg := testConfig(t)
	cfg.Node.Bootstrap = boot
	if o.client != nil {
		o.client(cfg)
	}
	n.client = startNode(t, cfg, Options{AllowSameSubnet: true})
	return n
}

func (n *testNet) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-n.client.Ready():
	case <-time.After(60 * time.Second):
		t.Fatalf("no circuit after 60s; status: %+v", n.client.Status())
	}
}

func (n *testNet) close() {
	_ = n.client.Close()
	var wg sync.WaitGroup
	for _, r := range n.relays {
		wg.Go(func() { _ = r.Close() })
	}
	wg.Wait()
}

// socksError is a SOCKS5 reply other than success.
type socksError struct{ code byte }

func (e *socksError) Error() string { return fmt.Sprintf("SOCKS5 reply %d", e.code) }

// socksDial connects to addr ("host:port") through the SOCKS5 proxy at
// proxyAddr, giving the host as a name (as socks5h does).
func socksDial(ctx context.Context, proxyAddr, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, error) { c.Close(); return nil, err }
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fail(err)
	}
	if b != [2]byte{5, 0} {
		return fail(fmt.Errorf("SOCKS5 method reply %v", b))
	}
	req := []byte{5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return fail(err)
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return fail(err)
	}
	if head[1] != 0 {
		return fail(&socksError{code: head[1]})
	}
	var skip int
	switch head[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return fail(err)
		}
		skip = int(l[0]) + 2
	default:
		return fail(fmt.Errorf("SOCKS5 address type %d", head[3]))
	}
	if _, err := io.CopyN(io.Discard, c, int64(skip)); err != nil {
		return fail(err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// socksClient is an HTTP client whose connections go through the SOCKS5
// proxy, one connection per request.
func socksClient(proxyAddr string) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return socksDial(ctx, proxyAddr, addr)
			},
		},
	}
}

func isSOCKSCode(err error, code byte) bool {
	var se *socksError
	return errors.As(err, &se) && se.code == code
}

// waitFor polls cond until it holds or timeout passes (testutil.WaitFor).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// checkNoLeak waits until no goroutine of pikcio's packages is left, other
// than the tests' own.
func checkNoLeak(t testing.TB) {
	t.Helper()
	testutil.CheckNoLeaks(t, testutil.Pikcio)
}
