package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/sirupsen/logrus"
)

// The HTTP front end runs github.com/elazarl/goproxy behind a net/http
// server. Plain requests go through an http.Transport whose DialContext is the
// shared Dialer (the transport never resolves: the name goes to the exit);
// CONNECT requests are hijacked and relayed here, so that the front end owns
// and waits for every tunnel goroutine. Upstream connections are not kept
// alive: a kept connection would be reused across isolation groups and across
// NewIdentity.
type httpProxy struct {
	dialer    Dialer
	log       *logrus.Entry
	ctx       context.Context // canceled by Close
	tr        *tracker
	gp        *goproxy.ProxyHttpServer
	transport *http.Transport
	srv       *http.Server
}

type isolationKeyCtx struct{}

func newHTTPProxy(ctx context.Context, d Dialer, opts ServerOptions, tr *tracker) *httpProxy {
	l := logrus.WithField("component", "proxy.http")
	h := &httpProxy{dialer: d, log: l, ctx: ctx, tr: tr}
	h.transport = &http.Transport{
		Proxy:                  nil, // never chain to a proxy from the environment
		DialContext:            h.dialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true, // pass the client's Accept-Encoding through untouched
		TLSHandshakeTimeout:    opts.HandshakeTimeout,
		MaxResponseHeaderBytes: 1 << 20,
	}

	gp := goproxy.NewProxyHttpServer()
	gp.Verbose = false
	gp.Logger = goproxyLogger{l} // goproxy's warnings name destinations: debug only
	gp.Tr = h.transport
	gp.ConnectDial = nil // NewProxyHttpServer may have set one from HTTPS_PROXY
	gp.ConnectDialWithReq = h.connectDial
	gp.KeepAcceptEncoding = true
	gp.NonproxyHandler = http.HandlerFunc(notProxy)
	gp.OnRequest().HijackConnect(h.connect)
	gp.OnRequest().DoFunc(h.onRequest)
	h.gp = gp

	h.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.HandshakeTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          log.New(debugWriter{l}, "", 0),
	}
	return h
}

// ServeHTTP counts the handler so Close can wait for it, and closes a
// connection goproxy hijacked once goproxy is done with it.
func (h *httpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.tr.start() {
		return
	}
	defer h.tr.done()
	hw := &hijackWatch{ResponseWriter: w}
	defer hw.closeHijacked()
	h.gp.ServeHTTP(hw, r)
}

func notProxy(w http.ResponseWriter, _ *http.Request) {
	writePlain(w, http.StatusBadRequest, "400 Bad Request: this is pikcio's HTTP proxy port; configure it as your HTTP proxy.\n")
}

func writePlain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// onRequest prepares a plain (non-CONNECT) request: the isolation key from
// Proxy-Authorization goes into the context, headers that are hop-by-hop or
// could identify the client are removed, and the round trip goes through
// h.roundTrip.
func (h *httpProxy) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	key := isolationKey(listenerHTTP, proxyAuthKey(r.Header.Get("Proxy-Authorization")))
	stripHopHeaders(r.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		// An empty value keeps net/http from sending its own User-Agent.
		r.Header["User-Agent"] = []string{""}
	}
	ctx.RoundTripper = goproxy.RoundTripperFunc(h.roundTrip)
	return r.WithContext(context.WithValue(r.Context(), isolationKeyCtx{}, key)), nil
}

func (h *httpProxy) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		h.log.WithError(err).Debug("round trip failed")
		status, body := httpFailure(err)
		return plainResponse(req, status, body), nil
	}
	stripHopHeaders(resp.Header)
	return resp, nil
}

func plainResponse(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode: status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":           {"text/plain; charset=utf-8"},
			"Content-Length":         {strconv.Itoa(len(body))},
			"X-Content-Type-Options": {"nosniff"},
		},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// connect serves a CONNECT request on the hijacked client connection.
func (h *httpProxy) connect(req *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
	defer client.Close()
	if req.Header.Get("Origin") != "" {
		refuseConnect(client, "CONNECT with an Origin header refused")
		return
	}
	h.serveConnect(client, listenerHTTP, req.URL.Host, req.Header.Get("Proxy-Authorization"))
}

// refuseConnect answers a CONNECT request that a web page may have made: one
// with an Origin header or a Host header for another authority.
func refuseConnect(client net.Conn, why string) {
	logrus.WithField("component", "proxy.http").Debug(why)
	writeRawResponse(client, http.StatusForbidden, "403 Forbidden: CONNECT with an Origin header or a Host header for another authority.\n")
}

// serveConnect serves a CONNECT to target, from the HTTP port or the SOCKS
// port, on client, whose reads start right behind the request, and closes
// client.
func (h *httpProxy) serveConnect(client net.Conn, listener, target, proxyAuth string) {
	defer client.Close()
	_ = client.SetDeadline(time.Time{})
	stream, err := h.dial(h.ctx, isolationKey(listener, proxyAuthKey(proxyAuth)), target)
	if err != nil {
		h.log.WithError(err).Debug("CONNECT failed")
		status, body := httpFailure(err)
		if errors.Is(err, errBadDestination) {
			status, body = http.StatusBadRequest, "400 Bad Request: CONNECT needs host:port.\n"
		}
		writeRawResponse(client, status, body)
		return
	}
	defer stream.Close()
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	relay(client, stream)
}

func writeRawResponse(w io.Writer, status int, body string) {
	_, _ = fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"X-Content-Type-Options: nosniff\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// dialContext is the transport's dialer: the isolation key rides in the
// request context (net/http keeps context values for dials).
func (h *httpProxy) dialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	key, _ := ctx.Value(isolationKeyCtx{}).(string)
	return h.dial(earlyContext(ctx, true), key, addr) // plain requests: optimistic data
}

// connectDial is goproxy's CONNECT dialer. CONNECT is hijacked and handled by
// connect, so this only guarantees that no goproxy path dials directly.
func (h *httpProxy) connectDial(req *http.Request, _, addr string) (net.Conn, error) {
	return h.dial(h.ctx, isolationKey(listenerHTTP, proxyAuthKey(req.Header.Get("Proxy-Authorization"))), addr)
}

func (h *httpProxy) dial(ctx context.Context, key, addr string) (net.Conn, error) {
	host, port, err := splitDest(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	conn, err := h.dialer.Dial(ctx, key, host, port)
	if err != nil {
		return nil, err
	}
	s := &trackedStream{Conn: conn, t: h.tr}
	if !h.tr.add(s) {
		return nil, ErrClosed
	}
	return s, nil
}

// Request headers that never leave the proxy: hop-by-hop ones (RFC 9110
// section 7.6.1) and ones that could carry the client's address.
var (
	hopHeaders = []string{
		"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
	}
	identifyingHeaders = []string{
		"Via", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip", "Client-Ip", "True-Client-Ip",
		"X-Client-Ip", "X-Originating-Ip", "X-Cluster-Client-Ip",
	}
)

// stripHopHeaders removes hop-by-hop headers, the headers Connection names,
// and headers that could identify the client. A WebSocket handshake keeps
// exactly "Connection: Upgrade" and "Upgrade: websocket", which it needs.
func stripHopHeaders(h http.Header) {
	ws := headerHasToken(h, "Connection", "upgrade") && headerHasToken(h, "Upgrade", "websocket")
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	for _, k := range identifyingHeaders {
		h.Del(k)
	}
	if ws {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

// hijackWatch is the ResponseWriter goproxy writes to. It remembers a
// connection hijacked through it, so the handler can close it when goproxy
// returns (goproxy's WebSocket relay leaves it open).
type hijackWatch struct {
	http.ResponseWriter
	conn net.Conn
}

func (w *hijackWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return c, rw, err
	}
	w.conn = c
	// net/http may have read bytes the client sent right behind the request
	// headers (a TLS ClientHello behind a CONNECT); goproxy drops rw, so the
	// connection handed on reads them first.
	if rw != nil && rw.Reader.Buffered() > 0 {
		pc := &prefixConn{Conn: c, r: rw.Reader}
		return pc, bufio.NewReadWriter(bufio.NewReader(pc), rw.Writer), nil
	}
	return c, rw, nil
}

// Write flushes a response of unknown length after every write, so that
// streamed responses (long polls, server-sent events) are not held back.
func (w *hijackWatch) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if err == nil && w.Header().Get("Content-Length") == "" {
		w.Flush()
	}
	return n, err
}

func (w *hijackWatch) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *hijackWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWatch) closeHijacked() {
	if w.conn != nil {
		_ = w.conn.Close()
	}
}

// goproxyLogger sends goproxy's messages to the debug log.
type goproxyLogger struct{ log *logrus.Entry }

func (l goproxyLogger) Printf(format string, v ...any) {
	l.log.Debugf(strings.TrimRight(format, "\n"), v...)
}
