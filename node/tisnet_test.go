package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/tis"
)

// startTISNet is a localnet of n relays (the last exits of them exits) without
// vouches (relays weigh the same: no exit is the favoured guard) whose
// nodes fetch revocations every 300 ms, with a circuit built.
func startTISNet(t *testing.T, n, exits int) *localnet.Network {
	t.Helper()
	net := localnet.StartTest(t, n, func(o *localnet.Options) {
		o.Exits = exits
		o.Vouches = []localnet.Vouch{}
		o.Base.TIS.RevocationRefresh = config.Duration(300 * time.Millisecond)
	})
	net.WaitReady(t)
	return net
}

// TestTISNetwork: enrolled relays and an enrolled client build circuits
// with certificates required everywhere; relays publish their
// certificates; a revoked relay leaves the client's directory and paths
// after the next revocation fetch.
func TestTISNetwork(t *testing.T) {
	// Three exits: once one is revoked, two are left, and at least one
	// of them is not the client's guard.
	net := startTISNet(t, 5, 3)
	root := net.TIS.PublicKey()

	for _, d := range net.Client.Directory().Relays() {
		data, ok := d.Extension(tis.DescriptorExtension)
		if !ok {
			t.Fatalf("relay %s publishes no certificate", d.PeerID)
		}
		if _, err := tis.VerifyNodeCertBytes(data, root, d.PeerID, time.Now(), nil); err != nil {
			t.Fatalf("relay %s certificate: %v", d.PeerID, err)
		}
	}

	victim := 4 // an exit (relays 2, 3 and 4 are)
	revoked := net.Relays[victim].ID()
	node.RevokeDropped(t, net.TIS, net.Client, net.Relays[victim], enrollmentOf(t, net.Relays[victim].DataDir()), "revoked relay dropped")
	// Circuits through the revoked relay fail as its peers drop it, and a
	// relay whose previous hop refused an EXTEND to it is kept out for a
	// few seconds (discovery's short mark): a select may find no usable
	// exit for a moment, but never the revoked relay.
	for i := 0; i < 100; i++ {
		var path []*discovery.Descriptor
		var err error
		testutil.WaitFor(t, 40*time.Second, "a usable path", func() bool {
			path, err = net.Client.Directory().SelectPath(discovery.PathRequest{Hops: 3, Port: 443})
			return err == nil
		})
		for _, h := range path {
			if h.PeerID == revoked {
				t.Fatal("revoked relay chosen")
			}
		}
	}
	// The revoked relay is refused as a previous hop too: a relay's
	// admission check uses the same list.
	if err := net.Relays[0].TISAgent().AdmitPeer(context.Background(), revoked); err == nil {
		testutil.WaitFor(t, 10*time.Second, "relay 0 has the new list", func() bool {
			return net.Relays[0].TISAgent().AdmitPeer(context.Background(), revoked) != nil
		})
	}

	// Every node's revocation loop stops with it.
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoLeaks(t, testutil.Pikcio)
}

// TestGuardRequiresEnrollment: a guard that requires enrollment destroys
// a circuit from a peer without a certificate; an enrolled client builds.
func TestGuardRequiresEnrollment(t *testing.T) {
	net := startTISNet(t, 3, 2) // the enrolled client built a circuit

	path, err := net.Client.Directory().SelectPath(discovery.PathRequest{Hops: 3, Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	hops := make([]circuit.Hop, len(path))
	for i, d := range path {
		hops[i] = circuit.Hop{ID: d.PeerID, Addrs: d.Addrs, OnionKey: d.OnionKey.Key}
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	cc := circuit.NewClient(h, circuit.DefaultClientOptions())
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cc.Build(ctx, hops)
	if err == nil {
		c.Close()
		t.Fatal("a peer without a certificate built a circuit")
	}
	var de *circuit.DestroyedError
	var be *circuit.BuildError
	if !errors.As(err, &de) || de.Reason != circuit.DestroyTokenMissing || !errors.As(err, &be) || be.Hop != 0 {
		t.Fatalf("build: %v, want DESTROY(%v) at hop 0", err, circuit.DestroyTokenMissing)
	}
}
