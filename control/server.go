package control

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/web"
)

// CookieFile is the name of the cookie file in the node's data directory.
const CookieFile = "control.cookie"

// cookieSize is the cookie's length in bytes (hex-encoded in the file).
const cookieSize = 32

// maxBody caps a request body.
const maxBody = 16 << 10

// Backend is what the control API drives: the node. Errors wrapping
// ErrBadRequest answer 400, ErrNotFound 404, ErrUnavailable 409 (the node
// lacks the role or the TIS configuration); any other 500.
type Backend interface {
	Status() web.Status
	NewIdentity() bool
	Contacts() ([]Contact, error)
	Invite(name string, lifetime time.Duration) (Invite, error)
	Accept(ctx context.Context, code, name string) (Contact, error)
	RemoveContact(nameOrID string) (Contact, error)
	// Trust answers a trust query; web.ErrUnknownID answers 404 and
	// web.ErrNoTrust (no [tis]) 409.
	Trust(query string) (*web.TrustReport, error)
	Enrollment() Enrollment
}

// Errors a Backend wraps to choose the status of its answer.
var (
	ErrBadRequest  = errors.New("bad request")
	ErrNotFound    = errors.New("not found")
	ErrUnavailable = errors.New("not available on this node")
)

// IsolationKeyFunc turns an Isolation into the pool's key; nil answers 400.
type IsolationKeyFunc func(Isolation) (string, error)

// Server is the control API on one listener.
type Server struct {
	b      Backend
	key    IsolationKeyFunc
	cookie []byte // hex text, as in the file
	unix   bool
	l      net.Listener
	srv    *http.Server
	hub    *hub
	log    *logrus.Entry
	ctx    context.Context // canceled by Close: ends event streams
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	poolMu sync.Mutex
	pool   Pool // ServePool's; nil on a node without a client
}

// Listen writes a fresh cookie to cookiePath (mode 0600, replacing the
// previous one: the cookie rotates at each start), listens on addr
// (host:port on loopback, or "unix:" and a socket path) and serves the API
// until Close.
func Listen(addr, cookiePath string, b Backend, key IsolationKeyFunc) (*Server, error) {
	cookie := make([]byte, cookieSize)
	_, _ = rand.Read(cookie)
	text := []byte(hex.EncodeToString(cookie))
	if err := privfile.Replace(cookiePath, append(text, '\n')); err != nil {
		return nil, fmt.Errorf("control cookie: %w", err)
	}
	s := &Server{b: b, key: key, cookie: text, hub: newHub(), log: logrus.WithField("component", "control")}
	var err error
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		s.unix = true
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		s.l, err = net.Listen("unix", path)
		if err == nil {
			err = os.Chmod(path, 0o600)
		}
	} else {
		s.l, err = net.Listen("tcp", addr)
		if err == nil && !isLoopback(s.l.Addr()) {
			_ = s.l.Close()
			err = fmt.Errorf("%s is not a loopback address", addr)
		}
	}
	if err != nil {
		if s.l != nil {
			_ = s.l.Close()
		}
		return nil, fmt.Errorf("control listen %s: %w", addr, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.WithError(err).Error("control API stopped")
		}
	}()
	s.log.WithField("addr", s.l.Addr().String()).Info("control API listening")
	return s, nil
}

// removeStaleSocket removes a socket left by a previous run; it refuses to
// remove anything that is not a socket.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: exists and is not a socket", path)
	}
	return os.Remove(path)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Publish sends e to every event stream.
func (s *Server) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.hub.publish(e)
}

// Close stops listening, ends the event streams and waits for the server.
// It is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel() // ends the handlers' request contexts, event streams too
		s.hub.close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		if s.unix {
			_ = os.Remove(s.l.Addr().String())
		}
	})
	s.wg.Wait()
	return nil
}

// Handler is the API behind its checks: a loopback Host (on TCP), no sign
// of a web page (Origin, Sec-Fetch-Site), and the cookie.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/new-identity", s.newIdentity)
	mux.HandleFunc("POST /v1/circuit", s.circuit)
	mux.HandleFunc("POST /v1/circuit/new", s.newCircuit)
	mux.HandleFunc("GET /v1/contacts", s.contacts)
	mux.HandleFunc("POST /v1/contacts/invite", s.invite)
	mux.HandleFunc("POST /v1/contacts/accept", s.accept)
	mux.HandleFunc("POST /v1/contacts/remove", s.remove)
	mux.HandleFunc("GET /v1/trust", s.trust)
	mux.HandleFunc("GET /v1/enrollment", s.enrollment)
	mux.HandleFunc("GET /v1/events", s.events)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		switch {
		case !s.unix && !web.LoopbackHost(r.Host):
			writeError(w, http.StatusForbidden, "the control API answers only to localhost or a loopback address")
		case r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "":
			writeError(w, http.StatusForbidden, "the control API does not answer web pages")
		case !s.authorized(r):
			h.Set("WWW-Authenticate", `Bearer realm="pikcio control"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong cookie: send Authorization: Bearer <the contents of "+CookieFile+">")
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.cookie) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

// answer writes v, or the status err calls for.
func answer(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound), errors.Is(err, web.ErrUnknownID):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrUnavailable), errors.Is(err, web.ErrNoTrust):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// decode reads a JSON body into v, strictly.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", ErrBadRequest, err)
	}
	return nil
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Status())
}

func (s *Server) newIdentity(w http.ResponseWriter, _ *http.Request) {
	ok := s.b.NewIdentity()
	writeJSON(w, http.StatusOK, OK{OK: ok})
}

func (s *Server) isolationKey(r *http.Request) (string, error) {
	var iso Isolation
	if err := decode(r, &iso); err != nil {
		return "", err
	}
	key, err := s.key(iso)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return key, nil
}

func (s *Server) circuit(w http.ResponseWriter, r *http.Request) {
	key, err := s.isolationKey(r)
	if err != nil {
		answer(w, nil, err)
		return
	}
	p, err := s.clientPool()
	if err != nil {
		answer(w, nil, err)
		return
	}
	var a CircuitAnswer
	if ci, ok := p.CircuitFor(key); ok {
		a.Circuit = s.b.Status().Circuit(ci.ID)
	}
	answer(w, a, nil)
}

func (s *Server) newCircuit(w http.ResponseWriter, r *http.Request) {
	key, err := s.isolationKey(r)
	if err != nil {
		answer(w, nil, err)
		return
	}
	p, err := s.clientPool()
	if err != nil {
		answer(w, nil, err)
		return
	}
	answer(w, NewCircuitAnswer{Retired: p.NewCircuitFor(key)}, nil)
}

func (s *Server) contacts(w http.ResponseWriter, _ *http.Request) {
	list, err := s.b.Contacts()
	if list == nil {
		list = []Contact{}
	}
	answer(w, list, err)
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request) {
	var req InviteRequest
	if err := decode(r, &req); err != nil {
		answer(w, nil, err)
		return
	}
	var lifetime time.Duration
	if req.Lifetime != "" {
		d, err := time.ParseDuration(req.Lifetime)
		if err != nil {
			answer(w, nil, fmt.Errorf("%w: lifetime: %w", ErrBadRequest, err))
			return
		}
		lifetime = d
	}
	inv, err := s.b.Invite(req.Name, lifetime)
	answer(w, inv, err)
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) {
	var req AcceptRequest
	if err := decode(r, &req); err != nil {
		answer(w, nil, err)
		return
	}
	c, err := s.b.Accept(r.Context(), req.Code, req.Name)
	answer(w, c, err)
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	var req RemoveRequest
	if err := decode(r, &req); err != nil {
		answer(w, nil, err)
		return
	}
	c, err := s.b.RemoveContact(req.Contact)
	answer(w, c, err)
}

func (s *Server) trust(w http.ResponseWriter, r *http.Request) {
	rep, err := s.b.Trust(r.URL.Query().Get("q"))
	answer(w, rep, err)
}

func (s *Server) enrollment(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Enrollment())
}

// events streams events as server-sent events until the client leaves or
// the server closes. A client that falls behind by more than the queue is
// dropped (its stream ends) rather than queued without bound.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	sub := s.hub.subscribe()
	defer s.hub.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": pikcio control events\n\n")
	f.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			f.Flush()
		case e, ok := <-sub:
			if !ok {
				return
			}
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b); err != nil {
				return
			}
			f.Flush()
		}
	}
}

// hub fans events out to the event streams.
type hub struct {
	mu     sync.Mutex
	closed bool
	subs   map[chan Event]struct{}
}

// subQueue is how many events a stream may fall behind.
const subQueue = 256

func newHub() *hub { return &hub{subs: make(map[chan Event]struct{})} }

func (h *hub) subscribe() chan Event {
	ch := make(chan Event, subQueue)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	return ch
}

func (h *hub) unsubscribe(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default: // too far behind: end its stream
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
