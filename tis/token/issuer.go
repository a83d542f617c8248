package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/httpapi"
	"github.com/pikcio/pikcio/tis"
)

// HTTP API of the issuer, under tis.PathTokens of the TIS base URL.
const (
	// PathKeys answers a GET with the encoded KeySet of published keys.
	PathKeys = tis.PathTokens + "keys"
	// PathIssue takes a POST of an encoded IssueRequest and answers an
	// encoded IssueResponse.
	PathIssue   = tis.PathTokens + "issue"
	contentType = "application/octet-stream"
)

// api maps refusals to wire codes and HTTP statuses, for the issuer and
// back to the sentinels for the client.
var api = &httpapi.Codes{
	Header: "Pikcio-Token-Error",
	Codes: []httpapi.Code{
		{Err: ErrMalformed, Code: "malformed", Status: http.StatusBadRequest},
		{Err: ErrNotEnrolled, Code: "not-enrolled", Status: http.StatusForbidden},
		{Err: ErrStaleRequest, Code: "stale-request", Status: http.StatusForbidden},
		{Err: ErrLimit, Code: "limit", Status: http.StatusTooManyRequests},
		{Err: ErrUnknownKey, Code: "unknown-key", Status: http.StatusConflict},
	},
	Rejected:  ErrRejected,
	Malformed: ErrMalformed,
	Timeout:   tis.DefaultClientTimeout,
}

// TIS is what an Issuer needs of the TIS server; *tis.Server has it.
type TIS interface {
	PublicKey() ed25519.PublicKey
	SignTokenKey(body []byte) []byte
	RevocationList() (*tis.RevocationList, []byte)
}

var _ TIS = (*tis.Server)(nil)

// Issuer is the TIS side: it keeps one RSA token key per period (in its
// KeyStore, with a cache of the keys it used), publishes
// the keys signed by the root, and blindly signs tokens for enrolled nodes
// up to TokensPerPeriod per enrollment and period. Mount its Handler on
// the TIS with tis.Server.MountTokens.
type Issuer struct {
	tis    TIS
	root   ed25519.PublicKey
	opts   IssuerOptions
	period int64 // seconds
	log    *logrus.Entry
	mux    *http.ServeMux

	mu   sync.Mutex
	keys map[int64]*periodKey // by period number
	// absent are past periods the KeyStore has no key of (asked once, not
	// at every request for the keys).
	absent map[int64]bool
}

// periodKey is one period's private key and its publication.
type periodKey struct {
	priv   *rsa.PrivateKey
	signer blindrsa.Signer
	pub    *Key
}

// NewIssuer returns an issuer for t, its keys in opts.Keys and its counts
// in opts.Counter.
func NewIssuer(t TIS, opts IssuerOptions) (*Issuer, error) {
	opts = opts.withDefaults()
	if opts.Period < time.Minute || opts.Period%time.Second != 0 {
		return nil, fmt.Errorf("token period %s: under a minute or not whole seconds", opts.Period)
	}
	if opts.KeyBits < MinKeyBits || opts.KeyBits > MaxKeyBits {
		return nil, fmt.Errorf("token key of %d bits: not within %d to %d", opts.KeyBits, MinKeyBits, MaxKeyBits)
	}
	is := &Issuer{
		tis:    t,
		root:   t.PublicKey(),
		opts:   opts,
		period: int64(opts.Period / time.Second),
		log:    logrus.WithField("component", "tis-token"),
		keys:   make(map[int64]*periodKey),
		absent: make(map[int64]bool),
	}
	is.mux = http.NewServeMux()
	is.mux.HandleFunc("GET "+PathKeys, is.handleKeys)
	is.mux.HandleFunc("POST "+PathIssue, is.handleIssue)
	return is, nil
}

// Handler returns the HTTP API (PathKeys, PathIssue).
func (is *Issuer) Handler() http.Handler { return is.mux }

// periodOf returns the number of the period that holds t.
func (is *Issuer) periodOf(t time.Time) int64 {
	u := t.Unix()
	p := u / is.period
	if u < 0 && u%is.period != 0 {
		p--
	}
	return p
}

// keyLocked returns period p's key from the cache or the KeyStore,
// which makes it if needed and create is set; nil if there is none.
func (is *Issuer) keyLocked(ctx context.Context, p int64, create bool) (*periodKey, error) {
	if k, ok := is.keys[p]; ok {
		return k, nil
	}
	if !create && is.absent[p] {
		return nil, nil
	}
	var generate func() ([]byte, error)
	if create {
		generate = func() ([]byte, error) {
			priv, err := rsa.GenerateKey(rand.Reader, is.opts.KeyBits)
			if err != nil {
				return nil, fmt.Errorf("token key: %w", err)
			}
			return x509.MarshalPKCS1PrivateKey(priv), nil
		}
	}
	der, err := is.opts.Keys.TokenKey(ctx, is.opts.Period, p, generate)
	if err != nil {
		return nil, err
	}
	if der == nil {
		is.absent[p] = true
		return nil, nil
	}
	priv, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("token key of period %d: %w: %w", p, ErrMalformed, err)
	}
	return is.addLocked(p, priv)
}

// addLocked publishes priv as period p's key.
func (is *Issuer) addLocked(p int64, priv *rsa.PrivateKey) (*periodKey, error) {
	start := time.Unix(p*is.period, 0)
	pub := newKey(tis.RootKeyID(is.root), start, start.Add(is.opts.Period), &priv.PublicKey)
	body, err := pub.body()
	if err != nil {
		return nil, err
	}
	pub.Signature = is.tis.SignTokenKey(body)
	k := &periodKey{priv: priv, signer: blindrsa.NewSigner(priv), pub: pub}
	is.keys[p] = k
	return k, nil
}

// Keys returns the published keys at now: the previous period's during
// the grace, the current one's and the next one's (so that guards hold it
// before its period starts).
func (is *Issuer) Keys(ctx context.Context, now time.Time) ([]*Key, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	cur := is.periodOf(now)
	is.pruneLocked(now)
	var out []*Key
	if now.Before(time.Unix(cur*is.period, 0).Add(is.opts.Grace)) {
		k, err := is.keyLocked(ctx, cur-1, false)
		if err != nil {
			return nil, err
		}
		if k != nil {
			out = append(out, k.pub)
		}
	}
	for _, p := range []int64{cur, cur + 1} {
		k, err := is.keyLocked(ctx, p, true)
		if err != nil {
			return nil, err
		}
		out = append(out, k.pub)
	}
	return out, nil
}

// pruneLocked forgets keys whose period and grace are over.
func (is *Issuer) pruneLocked(now time.Time) {
	for p := range is.absent {
		if p < is.periodOf(now)-1 {
			delete(is.absent, p)
		}
	}
	for p, k := range is.keys {
		if !now.Before(k.pub.End.Add(is.opts.Grace)) {
			delete(is.keys, p)
		}
	}
}

// Issue checks a request and blindly signs as many of its messages as the
// enrollment's limit allows. It returns ErrUnknownKey, ErrStaleRequest,
// ErrNotEnrolled, ErrMalformed or ErrLimit (wrapped).
func (is *Issuer) Issue(ctx context.Context, q *IssueRequest) (*IssueResponse, error) {
	now := is.opts.Now()
	if q.Root != tis.RootKeyID(is.root) {
		return nil, fmt.Errorf("token request for TIS %s: %w", q.Root, ErrUnknownKey)
	}
	if d := now.Sub(q.Time); d > is.opts.MaxClockSkew || d < -is.opts.MaxClockSkew {
		return nil, fmt.Errorf("token request %s from the TIS clock: %w", d.Round(time.Second), ErrStaleRequest)
	}
	cert := q.NodeCert
	id, err := cert.PeerID()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	revs, _ := is.tis.RevocationList()
	if err := tis.VerifyNodeCert(cert, is.root, id, now, revs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	msg, err := q.signed()
	if err != nil {
		return nil, err
	}
	if len(q.Signature) != ed25519.SignatureSize || !ed25519.Verify(cert.SubjectKey, msg, q.Signature) {
		return nil, fmt.Errorf("%w: request not signed by the certified node key", ErrNotEnrolled)
	}
	period := is.periodOf(now)
	is.mu.Lock()
	is.pruneLocked(now)
	k, err := is.keyLocked(ctx, period, true)
	is.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if q.Key != k.pub.ID() {
		return nil, fmt.Errorf("token request for key %s, the current key is %s: %w", q.Key, k.pub.ID(), ErrUnknownKey)
	}
	size := (k.priv.N.BitLen() + 7) / 8
	for _, m := range q.Blinded {
		if len(m) != size {
			return nil, fmt.Errorf("blinded message of %d bytes for a %d-byte key: %w", len(m), size, ErrMalformed)
		}
	}
	granted, remaining, err := is.opts.Counter.TakeTokens(ctx, cert.ID, period, len(q.Blinded), is.opts.TokensPerPeriod)
	if err != nil {
		return nil, fmt.Errorf("count tokens: %w", err)
	}
	if granted == 0 {
		return nil, fmt.Errorf("%d tokens this period: %w", is.opts.TokensPerPeriod, ErrLimit)
	}
	resp := &IssueResponse{Remaining: uint32(remaining), Signatures: make([][]byte, 0, granted)}
	for _, m := range q.Blinded[:granted] {
		if err := ctx.Err(); err != nil {
			// The client is gone (or the TIS closing cut its
			// connection): nobody would read the rest.
			return nil, fmt.Errorf("blind sign: %w", err)
		}
		s, err := k.signer.BlindSign(m)
		if err != nil {
			// A blinded message of the right size but not below the
			// modulus: the client's fault, and its tokens stay counted.
			return nil, fmt.Errorf("blind sign: %w: %w", ErrMalformed, err)
		}
		resp.Signatures = append(resp.Signatures, s)
	}
	return resp, nil
}

func (is *Issuer) handleKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := is.Keys(r.Context(), is.opts.Now())
	if err != nil {
		is.refuse(w, err)
		return
	}
	b, err := EncodeKeySet(keys)
	if err != nil {
		is.refuse(w, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(b)
}

func (is *Issuer) handleIssue(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxIssueRequestSize))
	if err != nil {
		is.refuse(w, fmt.Errorf("read token request: %w: %w", ErrMalformed, err))
		return
	}
	q, err := DecodeIssueRequest(body)
	if err != nil {
		is.refuse(w, err)
		return
	}
	resp, err := is.Issue(r.Context(), q)
	if err != nil {
		is.refuse(w, err)
		return
	}
	b, err := resp.Encode()
	if err != nil {
		is.refuse(w, err)
		return
	}
	// The node ID is not logged: the TIS keeps no record of who asked
	// beyond the Counter.
	is.log.Debugf("issued %d tokens", len(resp.Signatures))
	w.Header().Set("Content-Type", contentType)
	w.Write(b)
}

func (is *Issuer) refuse(w http.ResponseWriter, err error) { api.Refuse(w, is.log, err) }
