package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// The status server: a small page rendered on the server (no JavaScript,
// nothing loaded from elsewhere) at /, and the same snapshot as JSON at
// /api/status. It answers only requests whose Host header names a
// loopback address or localhost, so that a web page cannot read it through
// a DNS name rebound to 127.0.0.1.

// statusServer serves the status handler on one listener.
type statusServer struct {
	srv  *http.Server
	l    net.Listener
	done chan struct{}
	once sync.Once
	err  error
}

func startStatusServer(ctx context.Context, addr string, h http.Handler) (*statusServer, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	log := logrus.WithField("component", "status")
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.WithField("addr", l.Addr().String()).Warn("status page listening on a non-loopback address")
	} else {
		log.WithField("addr", l.Addr().String()).Info("status page listening")
	}
	s := &statusServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: statusReadHeaderTimeout,
			IdleTimeout:       statusIdleTimeout,
		},
		l:    l,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("status page stopped")
		}
	}()
	return s, nil
}

func (s *statusServer) Addr() net.Addr { return s.l.Addr() }

// Close stops the server and its connections and waits for it.
func (s *statusServer) Close() error {
	s.once.Do(func() { s.err = s.srv.Close() })
	<-s.done
	return s.err
}

// newStatusHandler serves snapshots from status.
func newStatusHandler(status func() Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'")
		if err := statusPage.Execute(w, pageData(status())); err != nil {
			logrus.WithField("component", "status").WithError(err).Debug("render status page")
		}
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status())
	})
	return hostCheck(mux)
}

// hostCheck refuses requests for any host but the loopback, and sets the
// headers every answer carries.
func hostCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !loopbackHost(r.Host) {
			http.Error(w, "403 Forbidden: the status page answers only to localhost or a loopback address.", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header value names this machine
// through the loopback: localhost (with or without a trailing dot, in any
// case), an IPv4 address in 127.0.0.0/8 or [::1], with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		if !validPort(port) {
			return false
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	return a.Unmap().IsLoopback()
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// page is what the template shows.
type page struct {
	Status
	Title string
}

func pageData(s Status) page {
	return page{Status: s, Title: "pikcio " + strings.Join(s.Roles, " + ")}
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"bytes":   humanBytes,
	"seconds": humanSeconds,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .2em .8em .2em 0; }
code { font-size: .9em; } .ok { color: #060; } .wait { color: #a60; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<table>
<tr><th>Version</th><td>{{.Version}}</td></tr>
<tr><th>Peer ID</th><td><code>{{.PeerID}}</code></td></tr>
<tr><th>Up</th><td>{{seconds .Uptime}}</td></tr>
<tr><th>Network</th><td>{{if .Joined}}<span class="ok">joined</span>{{else}}<span class="wait">joining</span>{{end}};
{{.Network.RelaysKnown}} relays known, {{.Network.ExitsKnown}} of them exits</td></tr>
</table>
{{with .Client}}
<h2>Client</h2>
<table>
<tr><th>SOCKS5 proxy</th><td>{{if .SOCKS}}<code>{{.SOCKS}}</code>{{else}}off{{end}}</td></tr>
<tr><th>HTTP proxy</th><td>{{if .HTTP}}<code>{{.HTTP}}</code>{{else}}off{{end}}</td></tr>
<tr><th>Circuits</th><td>{{if .Ready}}<span class="ok">ready</span>{{else}}<span class="wait">building the first one</span>{{end}};
{{.Pool.Circuits}} open ({{.Pool.Clean}} unused), {{.Pool.Streams}} streams, {{.Pool.Builds}} built, {{.Pool.BuildFailures}} failed builds, {{.Hops}} hops each</td></tr>
</table>
{{if .Circuits}}
<table>
<tr><th>Path</th><th>Age</th><th>Up</th><th>Down</th><th>Streams</th></tr>
{{range .Circuits}}<tr><td>{{range $i, $h := .Hops}}{{if $i}} &rarr; {{end}}<code>{{$h.ID}}</code> ({{$h.Role}}){{end}}</td><td>{{seconds .Age}}</td><td>{{bytes .BytesUp}}</td><td>{{bytes .BytesDown}}</td><td>{{.Streams}}</td></tr>
{{end}}</table>
{{end}}
{{end}}
{{with .Relay}}
<h2>{{if .Exit}}Exit relay{{else}}Relay{{end}}</h2>
<table>
<tr><th>Circuits</th><td>{{.Circuits}} open, {{.CircuitsTotal}} since start</td></tr>
<tr><th>Relayed</th><td>{{bytes .Bytes}}</td></tr>
{{if .Exit}}<tr><th>Exit rules</th><td>{{range .ExitPolicy}}<code>{{.}}</code><br>{{else}}default policy{{end}}</td></tr>{{end}}
</table>
{{end}}
<p>Also as JSON: <a href="/api/status">/api/status</a>. This page reloads every 5 seconds.</p>
</body>
</html>
`))

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func humanSeconds(s float64) string {
	d := int64(s)
	switch {
	case d < 60:
		return fmt.Sprintf("%ds", d)
	case d < 3600:
		return fmt.Sprintf("%dm%02ds", d/60, d%60)
	default:
		return fmt.Sprintf("%dh%02dm", d/3600, d/60%60)
	}
}
