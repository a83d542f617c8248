package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
)

// variant is the RFC 9474 variant of every token key: the one Privacy
// Pass uses for publicly verifiable tokens (RFC 9578 token type 2). The
// message carries a fresh random nonce, so it needs no random prefix.
const variant = blindrsa.SHA384PSSDeterministic

// Client is the node side of issuance: it asks the TIS at BaseURL for
// tokens, authenticated by the node's key and certificate, and unblinds
// them. It is a Source for a Wallet.
type Client struct {
	BaseURL  string
	Root     ed25519.PublicKey // the pinned TIS root
	NodeKey  crypto.PrivKey    // the node's libp2p (Ed25519) key
	NodeCert *tis.Certificate  // its certificate
	HTTP     *http.Client      // nil: one with tis.DefaultClientTimeout
	Now      func() time.Time  // nil: time.Now
}

// NewClient returns a client of the TIS at baseURL (see tis.BaseURL).
func NewClient(baseURL string, root ed25519.PublicKey, nodeKey crypto.PrivKey, cert *tis.Certificate) *Client {
	return &Client{BaseURL: baseURL, Root: root, NodeKey: nodeKey, NodeCert: cert}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Keys fetches the published token keys and verifies them.
func (c *Client) Keys(ctx context.Context) ([]*Key, error) {
	return FetchKeys(ctx, c.HTTP, c.BaseURL, c.Root)
}

// FetchKeys fetches the token keys the TIS at baseURL publishes and checks
// that root signed each and that no two overlap. hc nil uses a client with
// tis.DefaultClientTimeout. Guards call it to feed Redeemer.AddKeys.
func FetchKeys(ctx context.Context, hc *http.Client, baseURL string, root ed25519.PublicKey) ([]*Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+PathKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch token keys: %w", err)
	}
	b, err := api.Do(hc, req, MaxKeySetSize)
	if err != nil {
		return nil, fmt.Errorf("fetch token keys: %w", err)
	}
	keys, err := DecodeKeySet(b)
	if err != nil {
		return nil, fmt.Errorf("fetch token keys: %w", err)
	}
	for i, k := range keys {
		if err := k.Verify(root); err != nil {
			return nil, fmt.Errorf("fetch token keys: %w", err)
		}
		for _, o := range keys[:i] {
			if k.overlaps(o) {
				return nil, fmt.Errorf("fetch token keys: %s and %s: %w", k.ID(), o.ID(), ErrKeyConflict)
			}
		}
	}
	return keys, nil
}

// Batch is what one issuance gave: tokens of one key for one guard, and
// how many more the enrollment may get in the key's period.
type Batch struct {
	Key       *Key
	Guard     peer.ID
	Tokens    []*Token
	Remaining int
}

// Issue asks for n tokens (1 to MaxBatch) of the current key, for guard.
// The TIS learns neither the guard nor the tokens. The batch may hold
// fewer when the enrollment nears its limit; at the limit Issue returns
// ErrLimit.
func (c *Client) Issue(ctx context.Context, guard peer.ID, n int) (*Batch, error) {
	if len(guard) == 0 || len(guard) > maxGuard {
		return nil, fmt.Errorf("issue tokens for a guard ID of %d bytes: %w", len(guard), ErrMalformed)
	}
	if n < 1 || n > MaxBatch {
		return nil, fmt.Errorf("issue %d tokens: not within 1 to %d", n, MaxBatch)
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}
	// The key of the period that holds now, then, should the TIS's clock
	// have crossed a period's end that this one has not (or the reverse),
	// the key of the neighbouring period within the clock skew.
	now := c.now()
	var cands []*Key
	for _, at := range []time.Time{now, now.Add(tis.DefaultMaxClockSkew), now.Add(-tis.DefaultMaxClockSkew)} {
		for _, k := range keys {
			if !at.Before(k.Start) && at.Before(k.End) && !slices.Contains(cands, k) {
				cands = append(cands, k)
			}
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("no token key for %s: %w", now.UTC().Format(time.RFC3339), ErrUnknownKey)
	}
	for _, key := range cands {
		b, err := c.issueUnder(ctx, key, guard, n, now)
		if !errors.Is(err, ErrUnknownKey) {
			return b, err
		}
	}
	return nil, fmt.Errorf("issue tokens: the TIS refused keys %v: %w", cands, ErrUnknownKey)
}

// issueUnder is Issue under key.
func (c *Client) issueUnder(ctx context.Context, key *Key, guard peer.ID, n int, now time.Time) (*Batch, error) {
	bc, err := blindrsa.NewClient(variant, key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("token key %s: %w", key.ID(), err)
	}
	toks := make([]*Token, n)
	states := make([]blindrsa.State, n)
	q := &IssueRequest{Root: tis.RootKeyID(c.Root), NodeCert: c.NodeCert, Key: key.ID(), Time: now.Truncate(time.Second), Blinded: make([][]byte, n)}
	for i := range toks {
		t := &Token{Key: key.ID()}
		if _, err := rand.Read(t.Seed[:]); err != nil {
			return nil, fmt.Errorf("token seed: %w", err)
		}
		if q.Blinded[i], states[i], err = bc.Blind(rand.Reader, message(t.Key, guard, t.Seed[:])); err != nil {
			return nil, fmt.Errorf("blind token: %w", err)
		}
		toks[i] = t
	}
	msg, err := q.signed()
	if err != nil {
		return nil, err
	}
	if q.Signature, err = c.NodeKey.Sign(msg); err != nil {
		return nil, fmt.Errorf("sign token request: %w", err)
	}
	body, err := q.Encode()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+PathIssue, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("issue tokens: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	b, err := api.Do(c.HTTP, req, MaxIssueResponseSize)
	if err != nil {
		return nil, fmt.Errorf("issue tokens: %w", err)
	}
	resp, err := DecodeIssueResponse(b)
	if err != nil {
		return nil, fmt.Errorf("issue tokens: %w", err)
	}
	if len(resp.Signatures) > n {
		return nil, fmt.Errorf("issue tokens: %d signatures for %d requests: %w", len(resp.Signatures), n, ErrMalformed)
	}
	out := &Batch{Key: key, Guard: guard, Tokens: toks[:len(resp.Signatures)], Remaining: int(resp.Remaining)}
	for i, s := range resp.Signatures {
		// Finalize checks the signature: a TIS cannot hand out tokens
		// that guards would refuse, nor mark them with a bad signature.
		if out.Tokens[i].Signature, err = bc.Finalize(states[i], s); err != nil {
			return nil, fmt.Errorf("issue tokens: finalize: %w: %w", ErrForged, err)
		}
	}
	return out, nil
}
