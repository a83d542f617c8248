package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// procNet is a network of separate relay processes and a client process
// on loopback, whose relays a test kills and restarts: the bootstrap relay
// (index 0) listens on fixed ports so that restarted relays can join
// through it again; the others take new ports at each start, as a relay
// without a fixed --listen does.
type procNet struct {
	t        *testing.T
	base     string
	bootAddr string
	relays   []*relayProc
	client   *proc
	socks    string
	status   string
}

type relayProc struct {
	name string
	args []string
	p    *proc
	addr string // the first "relay address" it printed
	id   string // peer ID
}

// startProcNet starts n relays (the first exits of them open to 127.0.0.1)
// and a client, and waits for the client's first circuit.
func startProcNet(t *testing.T, n, exits int) *procNet {
	t.Helper()
	needCurl(t)
	pn := &procNet{t: t, base: t.TempDir()}
	port := freePort(t)
	_, p, _ := net.SplitHostPort(port)
	listen := []string{"--listen", "/ip4/127.0.0.1/tcp/" + p, "--listen", "/ip4/127.0.0.1/udp/" + p + "/quic-v1"}
	for i := range n {
		name := fmt.Sprintf("relay-%d", i)
		args := []string{"relay", "--data", filepath.Join(pn.base, name), "--log-level", relayLogLevel()}
		if i == 0 {
			args = append(args, listen...)
		} else {
			args = append(args, "--bootstrap", pn.bootAddr)
		}
		if i > 0 && i <= exits {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:*")
		}
		r := &relayProc{name: name, args: args}
		pn.relays = append(pn.relays, r)
		pn.startRelay(i)
		if i == 0 {
			pn.bootAddr = r.addr
		}
	}
	pn.socks, pn.status = freePort(t), freePort(t)
	pn.client = start(t, "client", "client", "--data", filepath.Join(pn.base, "client"),
		"--bootstrap", pn.bootAddr, "--allow-same-subnet",
		"--socks", pn.socks, "--http", "", "--status", pn.status, "--log-level", clientLogLevel())
	pn.client.waitLine(t, "circuit ready", 90*time.Second)
	return pn
}

// startRelay starts relay i (again) and waits until it serves.
func (pn *procNet) startRelay(i int) {
	t := pn.t
	t.Helper()
	r := pn.relays[i]
	args := r.args
	if i == 0 && r.p != nil {
		// The bootstrap relay has no bootstrap peers of its own: when it
		// restarts, it joins through another relay, as an operator would
		// have it do, so that it can publish again.
		for _, o := range pn.relays[1:] {
			if o.p != nil && o.addr != "" {
				args = append(append([]string(nil), args...), "--bootstrap", o.addr)
				break
			}
		}
	}
	r.p = start(t, r.name, args...)
	r.addr = r.p.waitLine(t, "relay address: ", startTimeout)
	r.id = r.addr[strings.LastIndex(r.addr, "/p2p/")+len("/p2p/"):]
}

// kill kills relay i with SIGKILL and waits for it to be gone.
func (pn *procNet) kill(i int) time.Time {
	t := pn.t
	t.Helper()
	r := pn.relays[i]
	if err := r.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", r.name, err)
	}
	at := time.Now()
	<-r.p.done
	return at
}

// byID returns the index of the relay with peer ID id, or -1.
func (pn *procNet) byID(id string) int {
	for i, r := range pn.relays {
		if r.id == id {
			return i
		}
	}
	return -1
}

// clientStatus is the part of the client's /api/status these tests read.
type clientStatus struct {
	Network struct {
		RelaysKnown int `json:"relays_known"`
	} `json:"network"`
	Client struct {
		Circuits []struct {
			Streams int `json:"streams"`
			Hops    []struct {
				PeerID string `json:"peer_id"`
				Role   string `json:"role"`
			} `json:"hops"`
		} `json:"circuits"`
	} `json:"client"`
}

func (pn *procNet) getStatus() (clientStatus, error) {
	var st clientStatus
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + pn.status + "/api/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: %s", resp.Status)
	}
	return st, decodeJSON(resp.Body, &st)
}

// fetcher fetches through the client's SOCKS5 proxy with a fresh
// connection each time, as a browser opening a new site does.
type fetcher struct {
	client *http.Client
}

func newFetcher(t *testing.T, socks string, timeout time.Duration) *fetcher {
	t.Helper()
	d, err := xproxy.SOCKS5("tcp", socks, nil, &net.Dialer{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{
		DialContext:       d.(xproxy.ContextDialer).DialContext,
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &fetcher{client: &http.Client{Transport: tr, Timeout: timeout}}
}

// fetch gets url and checks its length.
func (f *fetcher) fetch(ctx context.Context, url string, size int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != int64(size) {
		return fmt.Errorf("%s, %d bytes", resp.Status, n)
	}
	return nil
}

// endlessServer serves /endless: data at about 3 MB/s until the client
// goes away. started gets a value when a response begins.
func endlessServer(t *testing.T) (url string, started <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 16)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ch <- struct{}{}:
		default:
		}
		chunk := make([]byte, 16<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	})}
	wg.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return "http://" + l.Addr().String() + "/endless", ch
}

// procCounts returns the open file descriptors and threads of pid.
func procCounts(pid int) (fds, threads int) {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			fmt.Sscan(strings.TrimSpace(v), &threads)
		}
	}
	return len(ents), threads
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// relayLogLevel is the relays' log level in these tests: info, or what
// PIKCIO_TEST_RELAY_LOG says.
func relayLogLevel() string {
	if l := os.Getenv("PIKCIO_TEST_RELAY_LOG"); l != "" {
		return l
	}
	return "info"
}

// clientLogLevel is the client's log level in these tests: info, or what
// PIKCIO_TEST_CLIENT_LOG says (debug, to see a failing run's decisions).
func clientLogLevel() string {
	if l := os.Getenv("PIKCIO_TEST_CLIENT_LOG"); l != "" {
		return l
	}
	return "info"
}
