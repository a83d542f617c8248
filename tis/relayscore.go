package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pikcio/pikcio/internal/wire"
)

// PathRelayScore takes a POST of an encoded RelayScoreRequest and answers
// the encoded statement the configured RelayScorer makes.
const PathRelayScore = "/v1/relay-score"

// MaxRelayScoreAnswer caps the answer to a relay score request.
const MaxRelayScoreAnswer = 1024

var relayScoreRequestContext = []byte("pikcio-tis-relay-score-request-v1\x00")

// RelayScorer makes the TIS's statement of a relay's trust: it computes
// the score of the Matryoshka identity that runs the relay and returns the
// encoded statement for the node ID, signed with the root key it is
// given. The trust package implements it; the TIS only checks who asks.
type RelayScorer interface {
	RelayScore(ctx context.Context, node, matryoshka ID, root ed25519.PrivateKey, now time.Time) ([]byte, error)
}

// RelayScoreRequest is a relay's request for its score statement. The
// operator proves it holds both keys, and the TIS checks that it issued
// both certificates to the same person; the link between the two IDs is
// never in any answer.
type RelayScoreRequest struct {
	NodeCert       *Certificate
	MatryoshkaCert *Certificate
	Time           time.Time // whole seconds
	NodeSig        []byte    // by the node key
	MatryoshkaSig  []byte    // by the Matryoshka key
}

func (q *RelayScoreRequest) body() ([]byte, error) {
	if q.NodeCert == nil || q.MatryoshkaCert == nil || !validTime(q.Time) {
		return nil, fmt.Errorf("relay score request: %w", ErrMalformed)
	}
	nc, err := q.NodeCert.Encode()
	if err != nil {
		return nil, err
	}
	mc, err := q.MatryoshkaCert.Encode()
	if err != nil {
		return nil, err
	}
	b := wire.AppendBytes16(nil, nc)
	b = wire.AppendBytes16(b, mc)
	return appendUnix(b, q.Time), nil
}

func appendUnix(b []byte, t time.Time) []byte {
	u := uint64(t.Unix())
	return append(b, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32), byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}

// NewRelayScoreRequest signs a request with the node key (an Ed25519
// libp2p key) and the Matryoshka key.
func NewRelayScoreRequest(nodeKey crypto.PrivKey, nodeCert *Certificate, mkey ed25519.PrivateKey, mcert *Certificate, now time.Time) (*RelayScoreRequest, error) {
	q := &RelayScoreRequest{NodeCert: nodeCert, MatryoshkaCert: mcert, Time: now.Truncate(time.Second)}
	b, err := q.body()
	if err != nil {
		return nil, err
	}
	if q.NodeSig, err = nodeKey.Sign(wire.Signed(relayScoreRequestContext, b)); err != nil {
		return nil, fmt.Errorf("relay score request: %w", err)
	}
	q.MatryoshkaSig = wire.Sign(mkey, relayScoreRequestContext, b)
	return q, nil
}

// Encode returns the request's encoding.
func (q *RelayScoreRequest) Encode() ([]byte, error) {
	b, err := q.body()
	if err != nil {
		return nil, err
	}
	b = wire.AppendBytes16(b, q.NodeSig)
	return wire.AppendBytes16(b, q.MatryoshkaSig), nil
}

// DecodeRelayScoreRequest parses a request (form only).
func DecodeRelayScoreRequest(b []byte) (*RelayScoreRequest, error) {
	r := wire.NewReader(b, ErrMalformed)
	nc := r.Bytes16("node certificate", MaxCertificateSize)
	mc := r.Bytes16("matryoshka certificate", MaxCertificateSize)
	q := &RelayScoreRequest{Time: r.Time("time")}
	q.NodeSig = r.Bytes16("node signature", ed25519.SignatureSize)
	q.MatryoshkaSig = r.Bytes16("matryoshka signature", ed25519.SignatureSize)
	r.End("relay score request")
	if r.Err() != nil {
		return nil, r.Err()
	}
	var err error
	if q.NodeCert, err = DecodeCertificate(nc); err != nil {
		return nil, err
	}
	if q.MatryoshkaCert, err = DecodeCertificate(mc); err != nil {
		return nil, err
	}
	enc, err := q.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(enc, b) {
		return nil, fmt.Errorf("relay score request not canonical: %w", ErrMalformed)
	}
	return q, nil
}

// checkRelayScoreRequest verifies q and returns the two IDs.
func (s *Server) checkRelayScoreRequest(ctx context.Context, q *RelayScoreRequest) (node, matryoshka ID, err error) {
	now := s.opts.Now()
	if d := now.Sub(q.Time); d > s.opts.MaxClockSkew || d < -s.opts.MaxClockSkew {
		return ID{}, ID{}, fmt.Errorf("request %s from the TIS clock: %w", d.Round(time.Second), ErrStaleRequest)
	}
	revs, _ := s.RevocationList()
	root := s.root.PublicKey()
	if q.NodeCert.Type != TypeNode || q.MatryoshkaCert.Type != TypeMatryoshka {
		return ID{}, ID{}, fmt.Errorf("certificate types %s, %s: %w", q.NodeCert.Type, q.MatryoshkaCert.Type, ErrMalformed)
	}
	for _, c := range []*Certificate{q.NodeCert, q.MatryoshkaCert} {
		if err := c.Verify(root, now); err != nil {
			return ID{}, ID{}, err
		}
		if revs.Revoked(c.Serial) {
			return ID{}, ID{}, fmt.Errorf("certificate %s: %w", c.Serial, ErrRevoked)
		}
	}
	b, err := q.body()
	if err != nil {
		return ID{}, ID{}, err
	}
	if !wire.Verify(q.NodeCert.SubjectKey, relayScoreRequestContext, b, q.NodeSig) ||
		!wire.Verify(q.MatryoshkaCert.SubjectKey, relayScoreRequestContext, b, q.MatryoshkaSig) {
		return ID{}, ID{}, ErrProofOfPossession
	}
	o1, err1 := s.ownerOf(ctx, q.NodeCert.Serial)
	o2, err2 := s.ownerOf(ctx, q.MatryoshkaCert.Serial)
	if err := errors.Join(err1, err2); err != nil {
		return ID{}, ID{}, err
	}
	if o1 == "" || o1 != o2 {
		return ID{}, ID{}, fmt.Errorf("certificates of different people: %w", ErrProofOfPossession)
	}
	return q.NodeCert.ID, q.MatryoshkaCert.ID, nil
}

func (s *Server) handleRelayScore(w http.ResponseWriter, r *http.Request) {
	if s.opts.RelayScorer == nil {
		http.Error(w, "this TIS makes no relay score statements", http.StatusNotImplemented)
		return
	}
	if !s.scoreLim.Allow() {
		s.refuse(w, ErrRateLimited)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		s.refuse(w, fmt.Errorf("read request: %w", ErrMalformed))
		return
	}
	q, err := DecodeRelayScoreRequest(body)
	if err != nil {
		s.refuse(w, err)
		return
	}
	node, mid, err := s.checkRelayScoreRequest(r.Context(), q)
	if err != nil {
		s.refuse(w, err)
		return
	}
	out, err := s.opts.RelayScorer.RelayScore(r.Context(), node, mid, s.root.key, s.opts.Now())
	if err != nil {
		s.log.WithError(err).Debug("relay score")
		http.Error(w, "no score statement now", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(out)
}

// FetchRelayScore asks the TIS for the relay's score statement and returns
// its encoding, which the caller verifies (trust.DecodeRelayScore).
func (c *Client) FetchRelayScore(ctx context.Context, nodeKey crypto.PrivKey, nodeCert *Certificate, mkey ed25519.PrivateKey, mcert *Certificate) ([]byte, error) {
	q, err := NewRelayScoreRequest(nodeKey, nodeCert, mkey, mcert, c.now())
	if err != nil {
		return nil, err
	}
	body, err := q.Encode()
	if err != nil {
		return nil, err
	}
	u, err := c.url(PathRelayScore)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("fetch relay score: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	b, err := c.do(req, MaxRelayScoreAnswer)
	if err != nil {
		return nil, fmt.Errorf("fetch relay score: %w", err)
	}
	return b, nil
}
