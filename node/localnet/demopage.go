package localnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// DemoServiceName is the name the demo's own service is published under
// on the client: http://demo.pikcio/ through the client's proxies.
const DemoServiceName = "demo"

// demoPage explains what each hop of the joined circuits a request to
// demo.pikcio arrived by could see.
const demoPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>demo.pikcio: a Matryoshka service</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.45}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top}table{border-collapse:collapse}</style></head>
<body>
<h1>You reached demo.pikcio</h1>
<p>This page is served by a web server on 127.0.0.1 of the demo's client node, published as a
<em>Matryoshka service</em>: your request did not leave through an exit relay and needs no internet
access. It went out through your circuit to a <b>rendezvous relay</b>, where the service's own circuit
met it; the service had learned where to meet you through one of its <b>introduction points</b>.
Neither side learns the other's address.</p>
<table>
<tr><th>Who</th><th>What it could see</th></tr>
<tr><td>Your guard (first hop)</td><td>Your address and the next hop. Not the rendezvous relay, not the service, not this page.</td></tr>
<tr><td>Your middle hop</td><td>Two relays. Nothing of you or of the service.</td></tr>
<tr><td>The rendezvous relay</td><td>A random 20-byte cookie, then two circuits coming from two relays, joined. Neither your address nor the service's, neither party's identity; the bytes it carries are under an end-to-end layer it cannot remove.</td></tr>
<tr><td>The introduction point</td><td>One INTRODUCE message under a key of the service's that is used only there (not its address), from a circuit whose previous hop is a relay, never you. It cannot read the message.</td></tr>
<tr><td>The service's hops</td><td>The mirror of yours: its guard sees the service's address and a relay, nothing of you.</td></tr>
<tr><td>The DHT servers</td><td>An encrypted descriptor under a key blinded for today: not the service's address, not its intro points, and nothing that links it to yesterday's.</td></tr>
<tr><td>The service (this page)</td><td>A stream that arrived on a circuit from its rendezvous relay, and the name you typed. Not your address, not your peer ID.</td></tr>
</table>
<p>The handshake that protects the stream end to end (hs-ntor, as in Tor's onion services) is forward secret:
stealing the service's keys later does not open recorded traffic.</p>
</body></html>
`

// startDemoService serves demoPage on 127.0.0.1 and returns its address and
// a function that stops it.
func startDemoService() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo service: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, demoPage)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener closed: nothing to report
		}
	}()
	return l.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}
