package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// TrustCrawler keeps a trust.View fresh for a TIS that runs on its own
// (`pikcio tis serve`): a libp2p host with a throwaway key that joins
// pikcio's DHT through the bootstrap peers, as a DHT client, and crawls
// the trust records every refresh. The TIS makes relay score statements
// from the view; it publishes nothing and carries no circuits.
type TrustCrawler struct {
	host   host.Host
	disc   *discovery.Discovery
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewTrustCrawler starts crawling into view.
func NewTrustCrawler(root ed25519.PublicKey, bootstraps []string, view *trust.View, refresh time.Duration) (*TrustCrawler, error) {
	if len(bootstraps) == 0 {
		return nil, errors.New("trust crawler: no bootstrap peers")
	}
	addrs := make([]ma.Multiaddr, 0, len(bootstraps))
	for _, b := range bootstraps {
		a, err := ma.NewMultiaddr(b)
		if err != nil {
			return nil, fmt.Errorf("trust crawler: bootstrap %q: %w", b, err)
		}
		addrs = append(addrs, a)
	}
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		return nil, fmt.Errorf("trust crawler: %w", err)
	}
	revs := tis.NewRevocationCache(root)
	d, err := discovery.New(h,
		discovery.Bootstrap(addrs...),
		discovery.NoDiscovery(),
		discovery.Validator(tis.RevocationNamespace, tis.RevocationValidator{Root: root}),
		discovery.Validator(trust.Namespace, trust.Validator{Root: root, Revocations: revs.List}),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("trust crawler: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &TrustCrawler{host: h, disc: d, cancel: cancel}
	c.wg.Go(func() { c.run(ctx, view, revs, refresh) })
	return c, nil
}

func (c *TrustCrawler) run(ctx context.Context, view *trust.View, revs *tis.RevocationCache, refresh time.Duration) {
	log := logrus.WithField("component", "tis-trust")
	backoff := joinBackoffMin
	for {
		jctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "pikcio bootstrap"), joinTimeout)
		err := c.disc.Start(jctx)
		cancel()
		if err == nil || errors.Is(err, discovery.ErrStarted) {
			break
		}
		if ctx.Err() != nil {
			return
		}
		log.WithError(err).Warnf("joining the DHT failed; retrying in %v", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
	for {
		gctx, cancel := context.WithTimeout(ctx, revocationDHTTimeout)
		if data, err := c.disc.GetRecord(gctx, tis.RevocationKey(view.Root())); err == nil {
			_, _ = revs.Update(data)
		}
		cancel()
		if err := view.Refresh(ctx, c.disc, nil); err != nil {
			return
		}
		log.WithField("identities", view.Scores().Len()).Debug("trust scores computed")
		if !sleep(ctx, refresh) {
			return
		}
	}
}

// Close stops the crawler and waits for it.
func (c *TrustCrawler) Close() error {
	c.cancel()
	c.wg.Wait()
	return errors.Join(c.disc.Close(), c.host.Close())
}
