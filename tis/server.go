package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pikcio/pikcio/internal/privfile"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// HTTP API, all under the base URL of the TIS.
const (
	// PathEnroll takes a POST of an encoded EnrollRequest and answers an
	// encoded Enrollment.
	PathEnroll = "/v1/enroll"
	// PathRevocations answers a GET with the encoded, signed revocation list.
	PathRevocations = "/v1/revocations"
	// PathRootKey answers a GET with FormatKey of the root key and a newline.
	PathRootKey = "/v1/root-key"
	// errorHeader carries a refusal's code (errorCodes) to the client.
	errorHeader = "Pikcio-Tis-Error"
	contentType = "application/octet-stream"
)

// errorCodes maps refusals to wire codes and HTTP statuses; the client maps
// codes back to the sentinels.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{ErrMalformed, "malformed", http.StatusBadRequest},
	{ErrBadProperties, "bad-properties", http.StatusUnprocessableEntity},
	{ErrUnknownIssuer, "unknown-issuer", http.StatusBadRequest},
	{ErrProofOfPossession, "proof-of-possession", http.StatusForbidden},
	{ErrStaleRequest, "stale-request", http.StatusForbidden},
	{ErrAlreadyEnrolled, "already-enrolled", http.StatusConflict},
	{ErrBlocked, "blocked", http.StatusForbidden},
	{ErrRateLimited, "rate-limited", http.StatusTooManyRequests},
	{ErrClosed, "closed", http.StatusServiceUnavailable},
	{ErrExpired, "expired", http.StatusForbidden},
	{ErrNotYetValid, "not-yet-valid", http.StatusForbidden},
	{ErrRevoked, "revoked", http.StatusForbidden},
	{ErrSignature, "signature", http.StatusForbidden},
}

// state is the persistent state of a Server (StateFile). It holds no name
// or e-mail: only keyed hashes (hex) and serials.
type state struct {
	Version int `json:"version"`
	// Enrolled maps the keyed hash of an e-mail to its enrollment.
	Enrolled map[string]*entry `json:"enrolled"`
	// Keys maps the keyed hash of an enrolled public key to the keyed hash
	// of its e-mail, so one key pair serves one person.
	Keys map[string]string `json:"keys"`
	// Revoked lists revoked serials (hex), ascending.
	Revoked []string `json:"revoked"`
	// RevocationList is the current signed list.
	RevocationList []byte `json:"revocation_list"`
}

// entry is one enrolled person.
type entry struct {
	// Binding is the keyed hash of the properties and both public keys:
	// the same person with the same keys gets certificates re-issued.
	Binding string `json:"binding"`
	// Serials of every certificate issued to the person (hex).
	Serials []string `json:"serials"`
}

const stateVersion = 1

// Server is a TIS: it enrolls nodes over HTTP and keeps the revocation
// list. Its state lives in the directory given to NewServer; one Server at
// a time may use a directory.
type Server struct {
	root *Root
	opts ServerOptions
	log  *logrus.Entry
	mux  *http.ServeMux
	lim  *rate.Limiter
	// scoreLim bounds relay score requests, all clients together.
	scoreLim *rate.Limiter

	mu      sync.Mutex
	st      *state
	owners  map[Serial]string // serial -> e-mail hash
	revList *RevocationList
	revBlob []byte
	closed  bool
	httpSrv *http.Server
	tokens  tokenMount // PathTokens (tokens.go)

	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewServer opens the TIS in dir (created by Init) and its state.
func NewServer(dir string, opts ServerOptions) (*Server, error) {
	opts = opts.withDefaults()
	if opts.CertLifetime < 2*TimeGranularity {
		return nil, fmt.Errorf("certificate lifetime %s: under %s", opts.CertLifetime, 2*TimeGranularity)
	}
	if opts.RevocationLifetime < time.Minute {
		return nil, fmt.Errorf("revocation list lifetime %s: under a minute", opts.RevocationLifetime)
	}
	bs := make([]string, 0, len(opts.Bootstraps))
	for _, b := range opts.Bootstraps {
		a, err := ma.NewMultiaddr(b)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %w", b, err)
		}
		bs = append(bs, a.String())
	}
	if err := checkBootstraps(bs); err != nil {
		return nil, err
	}
	opts.Bootstraps = bs
	root, err := Open(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		root:     root,
		opts:     opts,
		log:      logrus.WithField("component", "tis"),
		owners:   make(map[Serial]string),
		lim:      rate.NewLimiter(rate.Limit(opts.EnrollRate), opts.EnrollBurst),
		scoreLim: rate.NewLimiter(rate.Limit(opts.RelayScoreRate), opts.RelayScoreBurst),
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+PathEnroll, s.handleEnroll)
	s.mux.HandleFunc("GET "+PathRevocations, s.handleRevocations)
	s.mux.HandleFunc("GET "+PathRootKey, s.handleRootKey)
	s.mux.HandleFunc("POST "+PathRelayScore, s.handleRelayScore)
	s.mux.HandleFunc("GET "+PathSeeds, s.handleSeeds)
	s.mux.Handle(PathTokens, &s.tokens)
	return s, nil
}

// load reads the state file, or starts an empty state with a first signed
// revocation list.
func (s *Server) load() error {
	path := filepath.Join(s.root.dir, StateFile)
	b, err := readPrivate(path, 1<<30)
	if errors.Is(err, fs.ErrNotExist) {
		s.st = &state{Version: stateVersion, Enrolled: map[string]*entry{}, Keys: map[string]string{}}
		return s.resignLocked(nil)
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	st := &state{}
	if err := json.Unmarshal(b, st); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("state %s: version %d: %w", path, st.Version, ErrMalformed)
	}
	if !slices.IsSorted(st.Revoked) {
		return fmt.Errorf("state %s: revoked serials not sorted: %w", path, ErrMalformed)
	}
	if st.Enrolled == nil {
		st.Enrolled = map[string]*entry{}
	}
	if st.Keys == nil {
		st.Keys = map[string]string{}
	}
	for owner, e := range st.Enrolled {
		if e == nil {
			return fmt.Errorf("state %s: empty entry: %w", path, ErrMalformed)
		}
		for _, h := range e.Serials {
			serial, err := ParseSerial(h)
			if err != nil || serial.String() != h {
				return fmt.Errorf("state %s: serial %q: %w", path, h, ErrMalformed)
			}
			s.owners[serial] = owner
		}
	}
	for _, h := range st.Revoked {
		if serial, err := ParseSerial(h); err != nil || serial.String() != h {
			return fmt.Errorf("state %s: revoked serial %q: %w", path, h, ErrMalformed)
		}
	}
	l, err := ParseRevocationList(st.RevocationList, s.root.PublicKey())
	if err != nil {
		return fmt.Errorf("state %s: revocation list: %w", path, err)
	}
	s.st, s.revList, s.revBlob = st, l, st.RevocationList
	return nil
}

// saveLocked writes the state atomically.
func (s *Server) saveLocked() error {
	b, err := json.MarshalIndent(s.st, "", "\t")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return privfile.Replace(filepath.Join(s.root.dir, StateFile), b)
}

// resignLocked signs a new revocation list (the next sequence number) of
// the revoked serials, stores it in the state and saves the state. On
// failure the previous list stays. undo restores the rest of the state.
func (s *Server) resignLocked(undo func()) error {
	if err := s.resignSaveLocked(); err != nil {
		if undo != nil {
			undo()
		}
		return err
	}
	return nil
}

func (s *Server) resignSaveLocked() error {
	serials := make([]Serial, 0, len(s.st.Revoked))
	for _, h := range s.st.Revoked {
		serial, err := ParseSerial(h)
		if err != nil {
			return err
		}
		serials = append(serials, serial)
	}
	seq := uint64(1)
	if s.revList != nil {
		seq = s.revList.Sequence + 1
	}
	now := s.opts.Now().UTC().Truncate(time.Second)
	l := &RevocationList{Sequence: seq, IssuedAt: now, NextUpdate: now.Add(s.opts.RevocationLifetime.Truncate(time.Second)), Serials: serials}
	if err := l.sign(s.root.key); err != nil {
		return err
	}
	blob, err := l.Encode()
	if err != nil {
		return err
	}
	old := s.st.RevocationList
	s.st.RevocationList = blob
	if err := s.saveLocked(); err != nil {
		s.st.RevocationList = old
		return err
	}
	s.revList, s.revBlob = l, blob
	return nil
}

// PublicKey returns the root public key.
func (s *Server) PublicKey() ed25519.PublicKey { return s.root.PublicKey() }

// Handler returns the HTTP API (PathEnroll, PathRevocations, PathRootKey).
func (s *Server) Handler() http.Handler { return s.mux }

// Revoke adds serial to the revocation list and signs a new list. The
// person it was issued to cannot enroll again. Revoking a revoked serial
// does nothing.
func (s *Server) Revoke(serial Serial) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.owners[serial]; !ok {
		return fmt.Errorf("revoke %s: %w", serial, ErrUnknownSerial)
	}
	h := serial.String()
	i, found := slices.BinarySearch(s.st.Revoked, h)
	if found {
		return nil
	}
	old := slices.Clone(s.st.Revoked)
	s.st.Revoked = slices.Insert(s.st.Revoked, i, h)
	if err := s.resignLocked(func() { s.st.Revoked = old }); err != nil {
		return fmt.Errorf("revoke %s: %w", serial, err)
	}
	s.log.Debugf("revoked %s; revocation list %d", serial, s.revList.Sequence)
	return nil
}

// RevocationList returns the current signed revocation list, signing a
// fresh one first when half its lifetime has passed.
func (s *Server) RevocationList() (*RevocationList, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.opts.Now().Before(s.revList.IssuedAt.Add(s.opts.RevocationLifetime/2)) {
		if err := s.resignLocked(nil); err != nil {
			// The old list stays valid until its NextUpdate.
			s.log.WithError(err).Warn("refresh revocation list")
		}
	}
	return s.revList, s.revBlob
}

// enroll checks a request and issues its certificates.
func (s *Server) enroll(q *EnrollRequest) (*Enrollment, error) {
	now := s.opts.Now()
	if q.Root != RootKeyID(s.root.PublicKey()) {
		return nil, fmt.Errorf("request for TIS %s: %w", q.Root, ErrUnknownIssuer)
	}
	if d := now.Sub(q.Time); d > s.opts.MaxClockSkew || d < -s.opts.MaxClockSkew {
		return nil, fmt.Errorf("request %s from the TIS clock: %w", d.Round(time.Second), ErrStaleRequest)
	}
	if q.NodeKey.Equal(q.MatryoshkaKey) {
		return nil, fmt.Errorf("node and matryoshka keys are the same: %w", ErrMalformed)
	}
	if err := q.verifyProof(); err != nil {
		return nil, err
	}
	p, err := normalizeProperties(q.Name, q.Email)
	if err != nil {
		return nil, err
	}
	secret := s.root.secret
	owner := hexHash(p.emailIndex(secret))
	binding := hexHash(p.binding(secret, q.NodeKey, q.MatryoshkaKey))
	keyHashes := []string{hexHash(keyIndex(secret, q.NodeKey)), hexHash(keyIndex(secret, q.MatryoshkaKey))}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	e := s.st.Enrolled[owner]
	if e != nil {
		if e.Binding != binding {
			return nil, fmt.Errorf("e-mail enrolled with other properties or keys: %w", ErrAlreadyEnrolled)
		}
		for _, h := range e.Serials {
			if _, found := slices.BinarySearch(s.st.Revoked, h); found {
				return nil, ErrBlocked
			}
		}
		if len(e.Serials) >= 2*MaxIssuesPerPerson {
			return nil, fmt.Errorf("certificates issued %d times: %w", len(e.Serials)/2, ErrRateLimited)
		}
	}
	for _, k := range keyHashes {
		if o, ok := s.st.Keys[k]; ok && o != owner {
			return nil, fmt.Errorf("key enrolled by another person: %w", ErrAlreadyEnrolled)
		}
	}

	issued := now.UTC().Truncate(TimeGranularity)
	expires := issued.Add(s.opts.CertLifetime.Truncate(time.Second))
	enr := &Enrollment{Bootstraps: slices.Clone(s.opts.Bootstraps)}
	for _, c := range []struct {
		typ  CertType
		id   ID
		key  []byte
		dest **Certificate
	}{
		{TypeNode, p.nodeID(secret), q.NodeKey, &enr.NodeCert},
		{TypeMatryoshka, p.matryoshkaID(secret), q.MatryoshkaKey, &enr.MatryoshkaCert},
	} {
		cert := &Certificate{Type: c.typ, ID: c.id, SubjectKey: bytes.Clone(c.key), IssuedAt: issued, Expires: expires}
		for {
			if _, err := rand.Read(cert.Serial[:]); err != nil {
				return nil, fmt.Errorf("serial: %w", err)
			}
			if _, taken := s.owners[cert.Serial]; !taken {
				break
			}
		}
		if err := cert.sign(s.root.key); err != nil {
			return nil, err
		}
		*c.dest = cert
	}

	// Apply, save, and undo on failure.
	var oldEntry *entry
	if e != nil {
		oldEntry = &entry{Binding: e.Binding, Serials: slices.Clone(e.Serials)}
	} else {
		e = &entry{Binding: binding}
		s.st.Enrolled[owner] = e
	}
	newKeys := []string{}
	for _, k := range keyHashes {
		if _, ok := s.st.Keys[k]; !ok {
			s.st.Keys[k] = owner
			newKeys = append(newKeys, k)
		}
	}
	e.Serials = append(e.Serials, enr.NodeCert.Serial.String(), enr.MatryoshkaCert.Serial.String())
	if err := s.saveLocked(); err != nil {
		if oldEntry != nil {
			s.st.Enrolled[owner] = oldEntry
		} else {
			delete(s.st.Enrolled, owner)
		}
		for _, k := range newKeys {
			delete(s.st.Keys, k)
		}
		return nil, err
	}
	s.owners[enr.NodeCert.Serial] = owner
	s.owners[enr.MatryoshkaCert.Serial] = owner
	s.log.Debugf("issued node certificate %s and matryoshka certificate %s", enr.NodeCert.Serial, enr.MatryoshkaCert.Serial)
	return enr, nil
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if !s.lim.Allow() {
		s.refuse(w, ErrRateLimited)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		s.refuse(w, fmt.Errorf("read request: %w: %w", ErrMalformed, err))
		return
	}
	q, err := DecodeEnrollRequest(body)
	if err != nil {
		s.refuse(w, err)
		return
	}
	enr, err := s.enroll(q)
	if err != nil {
		s.refuse(w, err)
		return
	}
	b, err := enr.Encode()
	if err != nil {
		s.refuse(w, err)
		return
	}
	s.log.Info("enrollment issued")
	w.Header().Set("Content-Type", contentType)
	w.Write(b)
}

func (s *Server) refuse(w http.ResponseWriter, err error) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			s.log.WithError(err).Debug("enrollment refused")
			w.Header().Set(errorHeader, c.code)
			http.Error(w, c.err.Error(), c.status)
			return
		}
	}
	s.log.WithError(err).Error("enrollment failed")
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (s *Server) handleRevocations(w http.ResponseWriter, r *http.Request) {
	_, blob := s.RevocationList()
	w.Header().Set("Content-Type", contentType)
	w.Write(blob)
}

func (s *Server) handleRootKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, FormatKey(s.root.PublicKey()))
}

// Listen serves the HTTP API on addr (host:port; port 0 picks one) until
// Close, and returns the address it listens on. With TLSCertFile and
// TLSKeyFile set it serves HTTPS (TLS 1.3); without, it serves plain HTTP
// and only on a loopback address (an IP literal or "localhost"), since
// enrollment requests carry a name and an e-mail.
func (s *Server) Listen(addr string) (net.Addr, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	var cfg *tls.Config
	if s.opts.TLSCertFile != "" || s.opts.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("listen %s: %w", addr, ErrNotLoopback)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.httpSrv != nil {
		return nil, fmt.Errorf("listen %s: already listening", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	s.httpSrv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.WithError(err).Error("serve")
		}
	}()
	s.log.Infof("serving on %s", ln.Addr())
	return ln.Addr(), nil
}

// Close stops serving, waits for the server goroutine and refuses further
// enrollments. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv := s.httpSrv
		s.mu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if e := srv.Shutdown(ctx); e != nil {
				err = errors.Join(e, srv.Close())
			}
		}
		s.wg.Wait()
	})
	return err
}
