package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
)

//go:embed assets/index.html assets/app.js assets/style.css
var assets embed.FS

// maxFormBytes caps the body of a form POST (it holds one token).
const maxFormBytes = 4 << 10

// handler serves the page, its assets and the API from one Source.
type handler struct {
	src   Source
	opts  Options
	token csrfToken
	page  *template.Template
	js    []byte
	css   []byte
	log   *logrus.Entry
}

// NewHandler returns the status page and its API for src; see the package
// documentation for the routes. Each handler has its own CSRF token.
func NewHandler(src Source, opts Options) http.Handler {
	h := &handler{
		src:   src,
		opts:  opts.withDefaults(),
		token: newCSRFToken(),
		page:  pageTemplate,
		js:    mustAsset("assets/app.js"),
		css:   mustAsset("assets/style.css"),
		log:   logrus.WithField("component", "web"),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.serveIndex)
	mux.HandleFunc("GET /api/status", h.serveStatus)
	mux.HandleFunc("POST /new-identity", h.serveNewIdentity)
	mux.Handle("GET /metrics", metricsHandler(src, h.opts.Metrics))
	mux.HandleFunc("GET /proxy.pac", h.servePAC)
	mux.HandleFunc("GET /assets/app.js", h.serveAsset("text/javascript; charset=utf-8", h.js))
	mux.HandleFunc("GET /assets/style.css", h.serveAsset("text/css; charset=utf-8", h.css))
	for pattern, x := range h.opts.Extra {
		mux.Handle("GET "+pattern, x)
	}
	return secure(mux)
}

func mustAsset(name string) []byte {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic("web: embedded asset missing: " + name)
	}
	return b
}

// wantDestinations reports whether the request asks for destinations
// (?destinations=1).
func wantDestinations(r *http.Request) bool {
	return r.URL.Query().Get("destinations") == "1"
}

func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	dest := wantDestinations(r)
	data := h.pageData(h.src.Status(dest), dest)
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, data); err != nil {
		h.log.WithError(err).Debug("render page")
		http.Error(w, "500 Internal Server Error: render page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

func (h *handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.src.Status(wantDestinations(r)))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "500 Internal Server Error: encode JSON", http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// newIdentityResult is the JSON answer to the script's POST.
type newIdentityResult struct {
	OK bool `json:"ok"`
}

// serveNewIdentity asks the node for a new identity. The page's script
// sends the token in the X-CSRF-Token header and gets JSON back; the form
// of the page without script sends it in the csrf field and is sent back
// to / (303 See Other).
func (h *handler) serveNewIdentity(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "403 Forbidden: cross-origin request.", http.StatusForbidden)
		return
	}
	fromScript := r.Header.Get(csrfHeader) != ""
	var got string
	if fromScript {
		got = r.Header.Get(csrfHeader)
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "400 Bad Request: form.", http.StatusBadRequest)
			return
		}
		got = r.PostForm.Get(csrfField)
	}
	if !h.token.valid(got) {
		http.Error(w, "403 Forbidden: missing or wrong CSRF token.", http.StatusForbidden)
		return
	}
	ok := h.src.NewIdentity()
	h.log.WithField("done", ok).Info("new identity requested")
	if !fromScript {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusConflict
	}
	writeJSON(w, code, newIdentityResult{OK: ok})
}

func (h *handler) serveAsset(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
}

// refreshSeconds is the reload period of the page without script.
func (h *handler) refreshSeconds() int {
	return int((max(h.opts.PollInterval, MinPlainRefresh) + time.Second - 1) / time.Second)
}
