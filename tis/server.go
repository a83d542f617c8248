package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/pikcio/pikcio/internal/httpapi"
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
	// errorHeader carries a refusal's code (api) to the client.
	errorHeader = "Pikcio-Tis-Error"
	contentType = "application/octet-stream"
)

// api maps refusals to wire codes and HTTP statuses for the server, and
// codes back to the sentinels for the client.
var api = &httpapi.Codes{
	Name:   "TIS",
	What:   "enrollment",
	Header: errorHeader,
	Codes: []httpapi.Code{
		{Err: ErrMalformed, Code: "malformed", Status: http.StatusBadRequest},
		{Err: ErrBadProperties, Code: "bad-properties", Status: http.StatusUnprocessableEntity},
		{Err: ErrUnknownIssuer, Code: "unknown-issuer", Status: http.StatusBadRequest},
		{Err: ErrProofOfPossession, Code: "proof-of-possession", Status: http.StatusForbidden},
		{Err: ErrStaleRequest, Code: "stale-request", Status: http.StatusForbidden},
		{Err: ErrAlreadyEnrolled, Code: "already-enrolled", Status: http.StatusConflict},
		{Err: ErrBlocked, Code: "blocked", Status: http.StatusForbidden},
		{Err: ErrRateLimited, Code: "rate-limited", Status: http.StatusTooManyRequests},
		{Err: ErrClosed, Code: "closed", Status: http.StatusServiceUnavailable},
		{Err: ErrExpired, Code: "expired", Status: http.StatusForbidden},
		{Err: ErrNotYetValid, Code: "not-yet-valid", Status: http.StatusForbidden},
		{Err: ErrRevoked, Code: "revoked", Status: http.StatusForbidden},
		{Err: ErrSignature, Code: "signature", Status: http.StatusForbidden},
		{Err: ErrCodeSent, Code: "code-sent", Status: http.StatusAccepted},
		{Err: ErrBadCode, Code: "bad-code", Status: http.StatusForbidden},
		{Err: ErrCodeExpired, Code: "code-expired", Status: http.StatusForbidden},
		{Err: ErrTooManyAttempts, Code: "too-many-attempts", Status: http.StatusForbidden},
		{Err: ErrMail, Code: "mail", Status: http.StatusServiceUnavailable},
		{Err: ErrNoDelta, Code: "no-delta", Status: http.StatusNotFound},
	},
	Rejected:  ErrRejected,
	Malformed: ErrMalformed,
	Timeout:   DefaultClientTimeout,
}

// Server is a TIS: it enrolls nodes over HTTP and keeps the revocation
// list. Its state lives in a Store: the SQLite database DBFile in the
// directory given to NewServer, or the PostgreSQL database of
// ServerOptions.DB, which several Servers (processes, machines) may share.
type Server struct {
	root   *Root
	opts   ServerOptions
	log    *logrus.Entry
	mux    *http.ServeMux
	store  Store
	mailer Mailer
	// lim bounds enrollment requests (all clients together), addrLim per
	// client address and domainLim the code mails per mail domain: shared
	// by the servers of a PostgreSQL store.
	lim, addrLim, domainLim limiter
	// scoreLim bounds relay score requests, all clients together.
	scoreLim *rate.Limiter

	mu       sync.Mutex
	revList  *RevocationList // the last list read or signed
	revPages [][]byte        // its encoded pages
	revRead  time.Time       // when revList was read from the store
	// refreshing is set while one caller of RevocationList reads the store.
	refreshing bool
	closed     bool
	httpSrv    *http.Server
	tokens     tokenMount // PathTokens (tokens.go)
	// pagesSigned counts the revocation pages and deltas signed.
	pagesSigned atomic.Int64

	closeOnce sync.Once
	wg        sync.WaitGroup
	// handlers counts the requests being served; once closing is set
	// no request starts, so Close can wait for the ones that did.
	hmu      sync.Mutex
	closing  bool
	handlers sync.WaitGroup
	grace    time.Duration // shutdownGrace; shorter in tests
}

// shutdownGrace is how long Close lets requests in flight finish (a
// token batch takes seconds of CPU on a loaded machine) before it cuts
// their connections.
const shutdownGrace = 5 * time.Second

// revocationCacheTime is how long a Server answers the revocation list it
// last read before asking the store again (another server may have signed
// a newer one).
const revocationCacheTime = time.Second

// NewServer opens the TIS in dir (created by Init), its store (migrating a
// JSON state file on the first start) and its mailer.
func NewServer(dir string, opts ServerOptions) (*Server, error) {
	opts = opts.withDefaults()
	if opts.CertLifetime < 2*TimeGranularity {
		return nil, fmt.Errorf("certificate lifetime %s: under %s", opts.CertLifetime, 2*TimeGranularity)
	}
	if opts.RevocationLifetime < time.Minute {
		return nil, fmt.Errorf("revocation list lifetime %s: under a minute", opts.RevocationLifetime)
	}
	if opts.Mailer == nil && !opts.OpenEnrollment {
		return nil, ErrNoMailer
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
	root, err := OpenWithSecret(dir, opts.SecretFile, opts.Secret)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := OpenStore(ctx, opts.DB, dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		root:      root,
		opts:      opts,
		log:       logrus.WithField("component", "tis"),
		store:     store,
		mailer:    opts.Mailer,
		lim:       newGlobalLimiter(store, "enroll", opts.EnrollRate, opts.EnrollBurst),
		addrLim:   newLimiter(store, "addr", opts.AddrRate, opts.AddrBurst, maxLimiterKeys),
		domainLim: newLimiter(store, "domain", opts.DomainRate, opts.DomainBurst, maxLimiterKeys),
		scoreLim:  rate.NewLimiter(rate.Limit(opts.RelayScoreRate), opts.RelayScoreBurst),
	}
	if err := s.migrateJSON(ctx); err != nil {
		store.Close()
		return nil, err
	}
	if err := s.firstRevocationList(ctx); err != nil {
		store.Close()
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

// maxLimiterKeys bounds the addresses and domains the limits remember.
const maxLimiterKeys = 100_000

// firstRevocationList signs the first list of a new store, and loads the
// current one.
func (s *Server) firstRevocationList(ctx context.Context) error {
	var l *RevocationList
	var pages [][]byte
	err := s.store.Update(ctx, func(tx Tx) error {
		seq, err := tx.RevocationSeq()
		if err != nil {
			return err
		}
		if seq == 0 {
			l, pages, err = s.resignTx(tx, 0, nil)
			return err
		}
		l, pages, err = s.readStoredList(tx, seq)
		return err
	})
	if err != nil {
		return err
	}
	s.setRevList(l, pages)
	return nil
}

// readStoredList reads and verifies the stored list of sequence seq.
func (s *Server) readStoredList(tx Tx, seq uint64) (*RevocationList, [][]byte, error) {
	pages, err := tx.RevocationPages()
	if err != nil {
		return nil, nil, err
	}
	l, err := AssembleRevocationList(pages, s.root.PublicKey())
	if err != nil {
		return nil, nil, fmt.Errorf("stored revocation list: %w", err)
	}
	if l.Sequence != seq {
		return nil, nil, fmt.Errorf("stored revocation list: sequence %d, row %d: %w", l.Sequence, seq, ErrMalformed)
	}
	return l, pages, nil
}

// setRevList makes l current unless a later list is.
func (s *Server) setRevList(l *RevocationList, pages [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revRead = s.opts.Now()
	if s.revList == nil || l.Sequence >= s.revList.Sequence {
		s.revList, s.revPages = l, pages
	}
}

// revocationRebase is how long the pages of a list serve as the base of
// its deltas; after it (or when the delta would pass a page) every page is
// signed afresh, and expired serials leave the list.
const revocationRebase = 7 * 24 * time.Hour

// resignTx signs the next revocation list (after sequence seq, the one tx
// holds locked), in which the serials added (hex) were just revoked, and
// stores it. The caller makes it current (setRevList) once the
// transaction commits.
//
// A list of several pages has a delta (its last page): the serials
// revoked since its pages were signed. While the delta can take added
// (at most MaxRevoked serials) and the pages are younger than
// revocationRebase, only the delta is signed again: one page, however
// long the list. Otherwise every page is signed afresh from the revoked
// serials in tx, in pages of MaxRevoked, with an empty delta when there
// are several.
func (s *Server) resignTx(tx Tx, seq uint64, added []string) (*RevocationList, [][]byte, error) {
	now := s.opts.Now().UTC().Truncate(time.Second)
	next := now.Add(s.opts.RevocationLifetime.Truncate(time.Second))
	if seq > 0 {
		cur, curPages, err := s.currentList(tx, seq)
		if err != nil {
			return nil, nil, err
		}
		if d := cur.Delta(); d != nil && len(d.Serials)+len(added) <= MaxRevoked && now.Sub(cur.pages[0].IssuedAt) < revocationRebase {
			more, err := parseSerials(added)
			if err != nil {
				return nil, nil, err
			}
			slices.SortFunc(more, func(a, b Serial) int { return bytes.Compare(a[:], b[:]) })
			nd := &RevocationList{Sequence: seq + 1, Base: d.Base, IssuedAt: now, NextUpdate: next, Serials: mergeSerials(d.Serials, more)}
			enc, err := s.signRevocations(nd)
			if err != nil {
				return nil, nil, err
			}
			l, err := cur.WithDelta(nd)
			if err != nil {
				return nil, nil, err
			}
			pages := append(slices.Clone(curPages[:len(curPages)-1]), enc)
			if err := tx.PutRevocationDelta(nd.Sequence, len(pages)-1, enc); err != nil {
				return nil, nil, err
			}
			return l, pages, nil
		}
	}
	hexes, err := tx.Revoked(now)
	if err != nil {
		return nil, nil, err
	}
	serials, err := parseSerials(hexes)
	if err != nil {
		return nil, nil, err
	}
	ls, err := splitRevocations(RevocationList{Sequence: seq + 1, IssuedAt: now, NextUpdate: next, Serials: serials})
	if err != nil {
		return nil, nil, err
	}
	if len(ls) > 1 {
		ls = append(ls, &RevocationList{Sequence: seq + 1, Base: seq + 1, IssuedAt: now, NextUpdate: next})
	}
	pages := make([][]byte, len(ls))
	for i, p := range ls {
		if pages[i], err = s.signRevocations(p); err != nil {
			return nil, nil, err
		}
	}
	l, err := assemblePages(ls)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.PutRevocationList(l.Sequence, pages); err != nil {
		return nil, nil, err
	}
	return l, pages, nil
}

// signRevocations signs and encodes one page or delta, and counts it.
func (s *Server) signRevocations(p *RevocationList) ([]byte, error) {
	if err := p.sign(s.root.key); err != nil {
		return nil, err
	}
	s.pagesSigned.Add(1)
	return p.Encode()
}

// currentList returns the list of sequence seq: the one held, or the
// one stored (another server signed it).
func (s *Server) currentList(tx Tx, seq uint64) (*RevocationList, [][]byte, error) {
	s.mu.Lock()
	l, pages := s.revList, s.revPages
	s.mu.Unlock()
	if l != nil && l.Sequence == seq {
		return l, pages, nil
	}
	return s.readStoredList(tx, seq)
}

// parseSerials parses stored serials (hex).
func parseSerials(hexes []string) ([]Serial, error) {
	serials := make([]Serial, 0, len(hexes))
	for _, h := range hexes {
		serial, err := ParseSerial(h)
		if err != nil {
			return nil, fmt.Errorf("stored serial %q: %w", h, err)
		}
		serials = append(serials, serial)
	}
	return serials, nil
}

// PublicKey returns the root public key.
func (s *Server) PublicKey() ed25519.PublicKey { return s.root.PublicKey() }

// Handler returns the HTTP API (PathEnroll, PathRevocations, PathRootKey).
func (s *Server) Handler() http.Handler { return s.mux }

// Revoke adds serial to the revocation list and signs a new list, in one
// transaction. The person it was issued to cannot enroll again. Revoking
// a revoked serial does nothing.
func (s *Server) Revoke(serial Serial) error {
	if s.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var l *RevocationList
	var pages [][]byte
	err := s.store.Update(ctx, func(tx Tx) error {
		l, pages = nil, nil
		owner, _, err := tx.CertOwner(serial.String())
		if err != nil {
			return err
		}
		if owner == "" {
			return ErrUnknownSerial
		}
		// Lock the person, then the list: the order enrollment takes.
		p, err := tx.Person(owner)
		if err != nil {
			return err
		}
		seq, err := tx.RevocationSeq()
		if err != nil {
			return err
		}
		n, err := tx.Revoke([]string{serial.String()})
		if err != nil || n == 0 {
			return err
		}
		if p != nil && !p.Blocked {
			p.Blocked = true
			if err := tx.PutPerson(p); err != nil {
				return err
			}
		}
		l, pages, err = s.resignTx(tx, seq, []string{serial.String()})
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke %s: %w", serial, err)
	}
	if l != nil {
		s.setRevList(l, pages)
		s.log.Debugf("revoked %s; revocation list %d", serial, l.Sequence)
	}
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// RevocationList returns the current signed revocation list (all its
// pages) and the encoding of its first page: the one it last read or
// signed, re-read from the store after revocationCacheTime (another
// server may have signed one), and signed afresh when half its lifetime
// has passed.
func (s *Server) RevocationList() (*RevocationList, []byte) {
	l, pages := s.revocationPages()
	return l, pages[0]
}

func (s *Server) revocationPages() (*RevocationList, [][]byte) {
	now := s.opts.Now()
	s.mu.Lock()
	l, pages, read := s.revList, s.revPages, s.revRead
	fresh := now.Before(l.IssuedAt.Add(s.opts.RevocationLifetime / 2))
	if s.closed || s.refreshing || (fresh && now.Sub(read) < revocationCacheTime && !now.Before(read)) {
		// One caller reads the store; the others answer the list held.
		s.mu.Unlock()
		return l, pages
	}
	s.refreshing = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.refreshing = false
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nl, npages := l, pages
	err := s.store.Update(ctx, func(tx Tx) error {
		nl, npages = l, pages
		seq, err := tx.RevocationSeq()
		if err != nil {
			return err
		}
		// The pages are read only when another server signed a list.
		if seq != l.Sequence {
			if nl, npages, err = s.readStoredList(tx, seq); err != nil {
				return err
			}
		}
		if now.Before(nl.IssuedAt.Add(s.opts.RevocationLifetime / 2)) {
			return nil
		}
		nl, npages, err = s.resignTx(tx, seq, nil)
		return err
	})
	if err != nil {
		// The old list stays valid until its NextUpdate.
		s.log.WithError(err).Warn("refresh revocation list")
		return l, pages
	}
	s.setRevList(nl, npages)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revList, s.revPages
}

// ownerOf returns the e-mail hash a serial was issued to, "" if none.
func (s *Server) ownerOf(ctx context.Context, serial Serial) (string, error) {
	var owner string
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		owner, _, err = tx.CertOwner(serial.String())
		return err
	})
	return owner, err
}

func (s *Server) refuse(w http.ResponseWriter, err error) { api.Refuse(w, s.log, err) }

// handleRevocations answers page ?page=N (default 0) of the current list.
// Every page names the list's sequence and page count: a client that got
// pages of two lists asks again.
func (s *Server) handleRevocations(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("delta") {
		l, pages := s.revocationPages()
		if l.Delta() == nil {
			s.refuse(w, ErrNoDelta)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(pages[len(pages)-1])
		return
	}
	page := 0
	if q := r.URL.Query().Get("page"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n >= MaxRevocationPages {
			s.refuse(w, fmt.Errorf("revocation list page %q: %w", q, ErrMalformed))
			return
		}
		page = n
	}
	l, pages := s.revocationPages()
	if page >= l.PageCount() {
		http.Error(w, "no such page", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(pages[page])
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
		Handler:           s.tracked(s.mux),
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

// Close stops serving, lets the requests in flight finish for a grace
// period, then cuts their connections and waits for their handlers, so
// that none runs on a closed store. Cutting them is no error of Close:
// their clients see a broken connection and try again. Close refuses
// further enrollments and is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv := s.httpSrv
		s.mu.Unlock()
		if srv != nil {
			grace := s.grace
			if grace == 0 {
				grace = shutdownGrace
			}
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if e := srv.Shutdown(ctx); e != nil {
				if !errors.Is(e, context.DeadlineExceeded) {
					err = e
				}
				s.log.Warnf("closing: cut the requests still in flight after %s", grace)
				err = errors.Join(err, srv.Close())
			}
		}
		s.hmu.Lock()
		s.closing = true
		s.hmu.Unlock()
		s.handlers.Wait()
		s.wg.Wait()
		err = errors.Join(err, s.store.Close())
	})
	return err
}

// tracked counts h's requests in s.handlers, and refuses them once Close
// waits for that count.
func (s *Server) tracked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hmu.Lock()
		if s.closing {
			s.hmu.Unlock()
			http.Error(w, ErrClosed.Error(), http.StatusServiceUnavailable)
			return
		}
		s.handlers.Add(1)
		s.hmu.Unlock()
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	})
}
