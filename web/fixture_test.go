package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the fixtures.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fixedSource is a data provider with fixed data: Status returns the
// snapshot of its first call (first) or of every later call (later, when
// set), with destinations only when asked for.
type fixedSource struct {
	mu          sync.Mutex
	first       Status
	later       *Status
	calls       int
	newIDCalls  int
	newIDResult bool
}

func (s *fixedSource) Status(destinations bool) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	st := s.first
	if s.later != nil && s.calls > 1 {
		st = *s.later
	}
	st.Errors = append([]ErrorEntry(nil), st.Errors...)
	if !destinations {
		for i := range st.Errors {
			st.Errors[i].Destination = ""
		}
	}
	return st
}

func (s *fixedSource) NewIdentity() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newIDCalls++
	return s.newIDResult
}

func (s *fixedSource) newIdentityCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newIDCalls
}

// peerID is a made-up peer ID whose last 8 characters encode n.
func peerID(n int) string { return fmt.Sprintf("12D3KooWTestPeerIdentifier%08d", n) }

var roles = []string{"guard", "middle", "exit"}

// clientStatus is a client+relay node with n circuits of 3 hops and full
// data.
func clientStatus(n int) Status {
	score := 73
	s := Status{
		Version:   "0.9.0-test",
		Generated: testNow,
		PeerID:    peerID(1),
		Roles:     []string{"client", "relay"},
		Started:   testNow.Add(-90 * time.Minute),
		Uptime:    5400,
		Addrs:     []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + peerID(1)},
		Joined:    true,
		Identity: &Identity{
			Enrolled:              true,
			NodeID:                "a1b2c3d4e5f60718293a4b5c6d7e8f90",
			MatryoshkaID:          "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
			NodeCertExpires:       testNow.Add(30 * 24 * time.Hour),
			MatryoshkaCertExpires: testNow.Add(300 * 24 * time.Hour),
			Score:                 &score,
			Contacts:              4,
			Tokens:                &Tokens{Held: 40, Guards: 2, Remaining: 448, LastError: "refill: TIS unreachable"},
		},
		Network: Network{RelaysKnown: 42, ExitsKnown: 7, Guards: 2, DHTPeers: 17, TrustIdentities: 120},
		Client: &ClientStatus{
			SOCKS:        "127.0.0.1:1080",
			HTTP:         "127.0.0.1:8118",
			Ready:        true,
			Hops:         3,
			BuildTimeout: 4.5,
			Pool: PoolStatus{
				Circuits: n, Clean: 1, Retired: 0, Streams: 5, Building: 1, Groups: 2,
				Builds: 31, BuildFailures: 3, BytesUp: 123456, BytesDown: 9876543,
			},
		},
		Relay: &RelayStatus{
			Circuits: 3, CircuitsTotal: 88, Bytes: 55 << 20, TCI: &Band{Min: 60, Max: 79},
		},
		Errors: []ErrorEntry{
			{Time: testNow.Add(-time.Minute), Kind: "dial", Message: "exit refused the connection", Destination: "secret-destination.example:443"},
			{Time: testNow.Add(-5 * time.Minute), Kind: "build", Message: "extend timed out"},
		},
	}
	for i := range n {
		c := CircuitStatus{
			ID: uint64(100 + i), Age: float64(30 + i), BytesUp: uint64(1000 * i), BytesDown: uint64(50000 * i),
			Streams: i % 3, StreamsOpened: uint64(i), Group: i % 4, State: "in use",
		}
		if c.Group == 0 {
			c.State = "clean"
		}
		for h := range 3 {
			hop := HopStatus{PeerID: peerID(1000*(i+1) + h), Role: roles[h]}
			hop.ID = shortID(hop.PeerID)
			if h != 1 {
				hop.TCI = &Band{Min: 20 * h, Max: 20*h + 19}
			}
			if h == 0 {
				hop.Contact = fmt.Sprintf("Alice-%d", i)
			}
			c.Hops = append(c.Hops, hop)
		}
		s.Client.Circuits = append(s.Client.Circuits, c)
	}
	for i := range 120 {
		s.Throughput = append(s.Throughput, Sample{Time: testNow.Unix() - 119 + int64(i), Up: uint64(100 * i), Down: uint64(3000 * (i % 17))})
	}
	return s
}

// relayStatus is a relay-only node.
func relayStatus() Status {
	return Status{
		Version: "0.9.0-test", Generated: testNow, PeerID: peerID(2), Roles: []string{"relay", "exit"},
		Started: testNow.Add(-time.Hour), Uptime: 3600, Joined: true,
		Network: Network{RelaysKnown: 12, ExitsKnown: 3, DHTPeers: 9},
		Relay: &RelayStatus{
			Exit: true, ExitPolicy: []string{"accept *:443", "reject *:*"}, Circuits: 6, CircuitsTotal: 1234,
			Bytes: 7 << 30, TCI: &Band{Min: 80, Max: 100},
		},
		Throughput: []Sample{{Time: testNow.Unix() - 1, Up: 10, Down: 20}, {Time: testNow.Unix(), Up: 30, Down: 40}},
		Errors:     []ErrorEntry{},
	}
}

// newServer serves a handler for src on 127.0.0.1.
func newServer(t testing.TB, src Source) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(src, Options{Now: func() time.Time { return testNow }}))
	t.Cleanup(srv.Close)
	return srv
}

// do sends req with a bounded client and returns the answer and its body.
func do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", req.URL, err)
	}
	return resp, string(b)
}

func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}
