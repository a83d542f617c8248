// Package control is the control API of a pikcio node, for a browser front
// end and other local programs (the role of Tor's ControlPort and arti's
// RPC): JSON over HTTP on a loopback address or a Unix socket
// (client.control_listen, off by default), with a small Go client in
// control/client.
//
// # Authentication
//
// At each start the node writes a fresh random cookie, 32 bytes in hex, to
// control.cookie in its data directory (mode 0600), as Tor's
// CookieAuthentication: only programs that can read the file may act.
// Every request carries it as
//
//	Authorization: Bearer <the file's contents>
//
// and gets 401 without it or with a wrong one. On TCP, a Host header that
// is not localhost or a loopback address gets 403 (the status page's DNS
// rebinding check), and so does any request with an Origin or
// Sec-Fetch-Site header: browsers add these to what web pages send, and the
// API answers no web page. The cookie never appears in an answer or a page.
//
// # Requests
//
// Bodies are JSON (unknown fields refused, at most 16 KiB); answers are
// JSON, and every failure is {"error": "..."} with status 400 (bad
// request), 401, 403, 404 (no such contact), 409 (the node has no client
// role, or no TIS configuration) or 500.
//
//	GET  /v1/status
//	    The status page's snapshot (web.Status, see package web), without
//	    destinations.
//	POST /v1/new-identity
//	    Retire every circuit for new streams, as the status page's button.
//	    Answer {"ok": true}. Publishes a new_identity event.
//	POST /v1/circuit        body Isolation
//	    The circuit that new streams of an isolation group use: {"circuit":
//	    web.CircuitStatus} (its ID, group, hops in order with their roles,
//	    IDs, TCI bands and contact names, as the status page shows them), or
//	    {"circuit": null} before the group's first stream.
//	POST /v1/circuit/new    body Isolation
//	    Retire that group's circuits only: its next stream gets a fresh
//	    circuit, other groups keep theirs. Answer {"retired": N}.
//	GET  /v1/contacts
//	    [Contact]: name, Matryoshka ID, node peer ID, when added.
//	POST /v1/contacts/invite  body {"name": "...", "lifetime": "48h"}
//	    A one-time invite code for a friend: {"code", "expires"}.
//	POST /v1/contacts/accept  body {"code": "...", "name": "..."}
//	    Accept a friend's code (the nodes exchange certificates): Contact.
//	POST /v1/contacts/remove  body {"contact": "name or Matryoshka ID"}
//	    Forget a contact: the removed Contact.
//	GET  /v1/trust?q=ID
//	    The trust report of a Matryoshka ID or a relay's peer ID (the
//	    status page's /api/trust/ID; "" is the node's own identity).
//	GET  /v1/enrollment
//	    {"configured": bool, "identity": web.Identity}: the TIS enrollment.
//	GET  /v1/events
//	    Server-sent events (text/event-stream), one per line pair "event:
//	    TYPE" and "data: Event as JSON", with a comment every 15 s. Types:
//	    circuit_built, circuit_closed, circuit_failed (with a message that
//	    never names a destination), new_identity, guards_changed (the short
//	    IDs of the guards). A stream that falls 256 events behind is ended.
//
// An Isolation names a group as a proxy client selects it:
//
//	{"proxy": "socks" | "http", "username": "...", "password": "..."}
//
// the SOCKS username and password, or the HTTP proxy's Proxy-Authorization
// Basic credentials (a browser tab's first-party domain, as Tor Browser
// uses); no credentials name the listener's group without any. The SOCKS
// and HTTP listeners never share a group.
//
// # Serving a node
//
// A node is the Backend. ContactBook answers the contact requests from
// its contact store (the node embeds it, with the contact exchange as its
// Exchange), and Server.Watch turns its pool's circuits and build failures
// and its guards into events (Pool is what it reads of *proxy.Pool);
// ServePool runs it until the server's Close and answers the circuit
// requests (the circuit of an isolation key, a new one) from the pool.
// The node's trust reports answer as they are, web.ErrUnknownID as 404
// and web.ErrNoTrust as 409.
package control
