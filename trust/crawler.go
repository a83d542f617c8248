package trust

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
	ma "github.com/multiformats/go-multiaddr"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/sleep"
	"github.com/pikcio/pikcio/tis"
)

// Crawler keeps a View fresh for a TIS that runs on its own (`pikcio tis
// serve`): a libp2p host with a throwaway key that joins pikcio's DHT
// through the bootstrap peers, as a DHT client, and crawls the trust
// records every refresh. The TIS makes relay score statements from the
// view; it publishes nothing and carries no circuits.
type Crawler struct {
	host   host.Host
	disc   *discovery.Discovery
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCrawler starts crawling into view.
func NewCrawler(root ed25519.PublicKey, bootstraps []string, view *View, refresh time.Duration) (*Crawler, error) {
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
		discovery.Validator(Namespace, Validator{Root: root, Revocations: revs.List}),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("trust crawler: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Crawler{host: h, disc: d, cancel: cancel}
	c.wg.Go(func() { c.run(ctx, view, revs, refresh) })
	return c, nil
}

func (c *Crawler) run(ctx context.Context, view *View, revs *tis.RevocationCache, refresh time.Duration) {
	log := logrus.WithField("component", "tis-trust")
	err := c.disc.Join(ctx, func(err error, retryIn time.Duration) {
		log.WithError(err).Warnf("joining the DHT failed; retrying in %v", retryIn)
	})
	if err != nil {
		return
	}
	for {
		gctx, cancel := context.WithTimeout(ctx, tis.RecordTimeout)
		if pages, err := tis.GetRevocationPages(gctx, c.disc, view.Root()); err == nil {
			if _, err := revs.Update(pages...); err != nil {
				log.WithError(err).Debug("revocation list from the DHT refused")
			}
		}
		cancel()
		if err := view.Refresh(ctx, c.disc, nil); err != nil {
			return
		}
		log.WithField("identities", view.Scores().Len()).Debug("trust scores computed")
		if !sleep.For(ctx, refresh) {
			return
		}
	}
}

// Close stops the crawler and waits for it.
func (c *Crawler) Close() error {
	c.cancel()
	c.wg.Wait()
	return errors.Join(c.disc.Close(), c.host.Close())
}
