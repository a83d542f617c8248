package tis_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

// enrolledAgent enrolls a fresh node with s; url "" makes an agent
// that learns revocations from the record store only.
func enrolledAgent(t *testing.T, s *tistest.TIS, name, url string) (*tis.Agent, crypto.PrivKey) {
	t.Helper()
	n := s.EnrollNode(t, name, tis.AgentOptions{URL: url, RevocationRefresh: 50 * time.Millisecond})
	return n.Agent, n.Key
}

func newRecords(s *tistest.TIS) *tistest.Records {
	return tistest.NewRecords(map[string]record.Validator{tis.RevocationNamespace: tis.RevocationValidator{Root: s.Root}})
}

// keep runs a.KeepRevocations on store until the test ends, counting the
// updates it reports.
func keep(t *testing.T, a *tis.Agent, store tis.RecordStore) *atomic.Int32 {
	var updates atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.KeepRevocations(ctx, store, func() { updates.Add(1) }) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return &updates
}

// TestKeepRevocations: an agent with the TIS's URL fetches a new list
// and puts it into the store; an agent without one learns it from the
// store; both report the update, and the revoked relay no longer
// verifies.
func TestKeepRevocations(t *testing.T) {
	s := tistest.Start(t, nil)
	store := newRecords(s)
	fetcher, _ := enrolledAgent(t, s, "fetcher", s.URL)
	reader, _ := enrolledAgent(t, s, "reader", "")
	relay, relayKey := enrolledAgent(t, s, "relay", "")
	relayID, _ := peer.IDFromPrivateKey(relayKey)
	if err := reader.VerifyRelay(relayID, relay.Certificate()); err != nil {
		t.Fatalf("relay before revocation: %v", err)
	}
	if err := reader.VerifyRelay(relayID, nil); !errors.Is(err, tis.ErrNoCertificate) {
		t.Fatalf("relay without a certificate: %v, want ErrNoCertificate", err)
	}

	fetched := keep(t, fetcher, store)
	read := keep(t, reader, store)
	testutil.WaitFor(t, 20*time.Second, "the first list in the store", func() bool { return reader.Revocations() != nil })
	before, readBefore := fetched.Load(), read.Load()
	if err := s.Server.Revoke(relay.Enrollment().NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "the reader learns the revocation", func() bool {
		l := reader.Revocations()
		return l != nil && l.Revoked(relay.Enrollment().NodeCert.Serial)
	})
	// The update is reported right after the list is swapped in.
	testutil.WaitFor(t, 5*time.Second, "both updates reported", func() bool {
		return fetched.Load() > before && read.Load() > readBefore
	})
	if err := reader.VerifyRelay(relayID, relay.Certificate()); !errors.Is(err, tis.ErrRevoked) {
		t.Fatalf("revoked relay: %v, want ErrRevoked", err)
	}
}

// TestKeepRevocationsHostileStore: a store that answers a list of
// another TIS, a tampered list or an older one changes nothing.
func TestKeepRevocationsHostileStore(t *testing.T) {
	s := tistest.Start(t, nil)
	other := tistest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	encode := func(s *tistest.TIS) []byte {
		l, err := tis.FetchRevocations(ctx, s.URL, s.Root)
		if err != nil {
			t.Fatal(err)
		}
		data, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	old := encode(s)
	victim, _ := enrolledAgent(t, s, "victim", "")
	if err := s.Server.Revoke(victim.Enrollment().NodeCert.Serial); err != nil {
		t.Fatal(err)
	}
	newest := encode(s)
	tampered := bytes.Clone(newest)
	tampered[len(tampered)-1] ^= 1

	reader, _ := enrolledAgent(t, s, "reader", "")
	store := newRecords(s)
	store.Set(tis.RevocationKey(s.Root), newest)
	keep(t, reader, store)
	testutil.WaitFor(t, 20*time.Second, "the genuine list", func() bool { return reader.Revocations() != nil })
	seq := reader.Revocations().Sequence
	for _, bad := range [][]byte{encode(other), tampered, old, {0xff}} {
		store.Set(tis.RevocationKey(s.Root), bad)
		time.Sleep(150 * time.Millisecond) // three refreshes
		if l := reader.Revocations(); l.Sequence != seq || !l.Revoked(victim.Enrollment().NodeCert.Serial) {
			t.Fatalf("after a hostile answer the list is %v", l)
		}
	}
}

// TestKeepRevocationsStoreDown: with the store failing every call the
// agent still takes the TIS's lists, and puts them once the store works.
func TestKeepRevocationsStoreDown(t *testing.T) {
	s := tistest.Start(t, nil)
	store := newRecords(s)
	store.Fail(errors.New("no DHT peers"))
	a, _ := enrolledAgent(t, s, "fetcher", s.URL)
	keep(t, a, store)
	testutil.WaitFor(t, 20*time.Second, "the list from the TIS", func() bool { return a.Revocations() != nil })
	if _, ok := store.Get(tis.RevocationKey(s.Root)); ok {
		t.Fatal("a failing store holds the list")
	}
	store.Fail(nil) // the next refresh puts it
	testutil.WaitFor(t, 20*time.Second, "the list in the store", func() bool {
		_, ok := store.Get(tis.RevocationKey(s.Root))
		return ok
	})
}

// newHost is a libp2p host on 127.0.0.1, closed at the test's end.
func newHost(t *testing.T, priv crypto.PrivKey) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics()}
	if priv != nil {
		opts = append(opts, libp2p.Identity(priv))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestAdmitPeer: a relay admits a connected peer that serves its
// certificate on CertProtocol, and refuses (and remembers refusing) a
// peer without one, one that serves another node's certificate, and one
// that serves garbage.
func TestAdmitPeer(t *testing.T) {
	s := tistest.Start(t, nil)
	relay, relayKey := enrolledAgent(t, s, "relay", "")
	relayHost := newHost(t, relayKey)
	relay.Serve(relayHost)

	good, goodKey := enrolledAgent(t, s, "good", "")
	goodHost := newHost(t, goodKey)
	good.Serve(goodHost)

	// A peer that shows good's certificate as its own.
	thief := newHost(t, nil)
	thief.SetStreamHandler(tis.CertProtocol, func(st network.Stream) {
		_, _ = st.Write(good.Certificate())
		_ = st.Close()
	})
	// A peer that sends garbage beyond the size cap.
	noisy := newHost(t, nil)
	noisy.SetStreamHandler(tis.CertProtocol, func(st network.Stream) {
		_, _ = st.Write(make([]byte, tis.MaxCertificateSize+10))
		_ = st.Close()
	})
	silent := newHost(t, nil) // serves nothing

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, h := range []host.Host{goodHost, thief, noisy, silent} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: relayHost.ID(), Addrs: relayHost.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		id   peer.ID
		want error
	}{
		{"enrolled", goodHost.ID(), nil},
		{"another's certificate", thief.ID(), tis.ErrWrongKey},
		{"oversize", noisy.ID(), tis.ErrMalformed},
		{"no certificate", silent.ID(), tis.ErrNotEnrolled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := relay.AdmitPeer(ctx, tt.id)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("AdmitPeer: %v, want %v", err, tt.want)
			}
			if tt.want != nil && !errors.Is(err, tis.ErrNotEnrolled) {
				t.Fatalf("AdmitPeer: %v, want it to wrap ErrNotEnrolled", err)
			}
		})
	}
	// The answers are cached: a peer that later learns to answer is
	// still refused until certRefusedFor has passed.
	silent.SetStreamHandler(tis.CertProtocol, func(st network.Stream) {
		_, _ = st.Write(good.Certificate())
		_ = st.Close()
	})
	if err := relay.AdmitPeer(ctx, silent.ID()); err == nil {
		t.Fatal("a refused peer was admitted at once")
	}
	// A peer not connected is not dialed.
	stranger := newHost(t, nil)
	if err := relay.AdmitPeer(ctx, stranger.ID()); !errors.Is(err, tis.ErrNotEnrolled) {
		t.Fatalf("unconnected peer: %v", err)
	}
}
