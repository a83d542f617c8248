package token

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/testutil"
)

// BenchmarkBuildWithToken is a 3-hop circuit build on loopback without
// admission, and with a token from a Wallet redeemed by a Guard at the
// first hop: the extra build time of anonymous admission, with the
// wallet filled beforehand (refills run in the background, off the
// build's path).
func BenchmarkBuildWithToken(b *testing.B) {
	f := newFixture(b, IssuerOptions{TokensPerPeriod: 1 << 30})
	var hosts []host.Host
	var hops []circuit.Hop
	var guard *Guard
	relays := map[peer.ID]bool{}
	for i := range 3 {
		h := testutil.TCPHost(b, nil)
		relays[h.ID()] = true
		ro := circuit.RelayOptions{AllowPrivateAddrs: true, HandshakesPerSecond: 1e6, HandshakeBurst: 1e6, HandshakesPerPeerPerSecond: 1e6, HandshakePeerBurst: 1e6}
		if i == 0 {
			guard = NewGuard(f.tis.URL, f.tis.Root, h.ID(), GuardOptions{Now: f.clock.Now})
			b.Cleanup(func() { _ = guard.Close() })
			ro.AdmitCircuit = func(ctx context.Context, prev peer.ID, tok []byte) error {
				if tok == nil && relays[prev] {
					return nil // a relay extending, as node admits it
				}
				if tok == nil {
					return circuit.ErrTokenMissing
				}
				return guard.Redeem(ctx, tok)
			}
		}
		r, err := circuit.NewRelay(h, ro)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		hosts = append(hosts, h)
		hops = append(hops, r.Hop())
	}
	alice := f.client(f.tis.Enroll(b, "alice"))
	// take is a wallet's Take, the wallet filled before the timer starts:
	// the TIS's signing (BenchmarkIssue) runs in this process and would
	// otherwise count as the client's build time.
	take := func(b *testing.B) func(context.Context, peer.ID) ([]byte, error) {
		w, err := OpenWallet(filepath.Join(b.TempDir(), "tokens"), alice, WalletOptions{Low: 1, Target: min(b.N+1, MaxWalletTokens), Now: f.clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = w.Close() })
		if err := w.Refill(ctx(b), hops[0].ID); err != nil {
			b.Fatal(err)
		}
		return w.Take
	}
	for _, tc := range []struct {
		name  string
		token bool
		path  []circuit.Hop
	}{
		// The same three relays; without a token the path enters at a
		// relay that asks for none.
		{"no admission", false, []circuit.Hop{hops[1], hops[0], hops[2]}},
		{"token", true, hops},
	} {
		b.Run(tc.name, func(b *testing.B) {
			path := tc.path
			ch := testutil.TCPHost(b, nil)
			var o circuit.ClientOptions
			if tc.token {
				o.Token = take(b)
			}
			cc := circuit.NewClient(ch, o)
			b.Cleanup(func() { _ = cc.Close() })
			build := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, err := cc.Build(ctx, path)
				if err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
			build() // warm the links and, with tokens, the wallet
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				build()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/build")
		})
	}
}
