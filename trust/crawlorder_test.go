package trust

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

// orderedGets records the order in which keys are fetched from a memDHT.
type orderedGets struct {
	*memDHT
	mu   sync.Mutex
	keys []string
}

func (g *orderedGets) GetRecord(ctx context.Context, key string) ([]byte, error) {
	g.mu.Lock()
	g.keys = append(g.keys, key)
	g.mu.Unlock()
	return g.memDHT.GetRecord(ctx, key)
}

// TestCrawlFetchesContactsAsTheGraph: whoever serves a crawl's fetches
// cannot tell a contact the public graph reaches from any other
// identity: it is fetched when the crawl reaches it, after its voucher,
// not with the seeds; a contact no vouch leads to comes last, after the
// crawl. (Before, contacts were fetched with the seeds, first.)
func TestCrawlFetchesContactsAsTheGraph(t *testing.T) {
	tt := newTestTIS(t)
	seed, a, contact, lone := tt.enroll(t, "seed"), tt.enroll(t, "alice"), tt.enroll(t, "contact"), tt.enroll(t, "lone")
	dht := &memDHT{v: Validator{Root: tt.root}, m: map[string][]byte{}}
	now := time.Now()
	seeds, err := tis.NewSeedList([]tis.ID{seed.cert.ID}, now.Add(-time.Minute), tt.rootPriv)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := seeds.Encode()
	for key, val := range map[string][]byte{
		SeedsKey(tt.root):          enc,
		BundleKey(seed.cert.ID):    signedBundle(t, seed, now.Add(-time.Minute), []*Vouch{nowVouch(a.cert.ID, 100)}, nil, nil),
		BundleKey(a.cert.ID):       signedBundle(t, a, now.Add(-time.Minute), []*Vouch{nowVouch(contact.cert.ID, 100)}, nil, nil),
		BundleKey(contact.cert.ID): signedBundle(t, contact, now.Add(-time.Minute), nil, nil, nil),
		BundleKey(lone.cert.ID):    signedBundle(t, lone, now.Add(-time.Minute), nil, nil, nil),
	} {
		if err := dht.put(key, val); err != nil {
			t.Fatal(err)
		}
	}
	g := &orderedGets{memDHT: dht}
	v := NewView(ViewOptions{Root: tt.root})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Refresh(ctx, g, []tis.ID{lone.cert.ID, contact.cert.ID}); err != nil {
		t.Fatal(err)
	}
	want := []string{SeedsKey(tt.root), BundleKey(seed.cert.ID), BundleKey(a.cert.ID), BundleKey(contact.cert.ID), BundleKey(lone.cert.ID)}
	if !slices.Equal(g.keys, want) {
		t.Fatalf("fetched in the order\n%v\nwant\n%v", g.keys, want)
	}
	if v.Bundles() != 4 {
		t.Fatalf("view holds %d bundles, want 4", v.Bundles())
	}
}
