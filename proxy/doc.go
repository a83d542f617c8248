// Package proxy is pikcio's local front end: a SOCKS5 server and an HTTP proxy
// on 127.0.0.1 that carry every client connection as a stream on an onion
// circuit.
//
// Both front ends dial through one [Dialer], normally a [Pool]. The pool keeps
// a few prebuilt circuits so that the first request does not wait for a build,
// isolates streams by the credentials a client presents (like Tor's
// IsolateSOCKSAuth: any username and password are accepted and only choose the
// circuit), retires circuits once they are dirty or when [Pool.NewIdentity] is
// called, and replaces circuits that die. The SOCKS and HTTP listeners never
// share an isolation group, with or without credentials (Tor never mixes
// listeners): the pool's key is the listener and the credentials.
//
// The SOCKS port is pikcio's own SOCKS5 server (socks.go, socks5wire.go), so
// that each reply is written where its outcome is known rather than patched
// into a library's bytes. It serves CONNECT, Tor's RESOLVE (0xF0) and
// RESOLVE_PTR (0xF1) through a [Resolver], and an HTTP CONNECT request (as
// arti does; refused with an Origin header or a Host header for another
// authority). Bytes a client sends right behind a request, on either port,
// go into the tunnel.
//
// A relay's death costs a stream at most a retry. The pool's spare circuits
// go through different exits (the BuildFunc is asked, through
// [AvoidExits], to pass over the exits the spares already use), and for
// 5 s after a circuit dies every build passes over its exit and middle
// ([AvoidRelays]) while others can serve: one of them may be the relay
// that died, and a path through it would fail only when the hop before
// gives up dialing it. A stream
// whose circuit turns out broken, or whose BEGIN gets no answer within 3 s
// plus ten of the circuit's round trips (its RTT method), is retried
// through another exit, up to three times and within ConnectTimeout in
// all, as Tor retries a stream on new circuits until its stream timeout;
// the circuit takes no more streams. A destination's refusal (or any
// error the exit reports of the destination) is not retried. An isolation group has no ceiling: a
// circuit carries at most MaxStreamsPerCircuit streams, and when an exit
// refuses a stream because its circuit is full (CIRCUIT_FULL), the stream
// goes to another circuit of the same group, a new one if need be. A
// stream opened with optimistic data (early.go), handed to the application
// before the exit answered, follows the same rules when its answer fails:
// the pool opens it again and sends the bytes written so far (up to 64
// KiB) there.
//
// No name is ever resolved on the client: host names travel to the exit relay,
// which resolves them (socks5h semantics for SOCKS, the request's host for
// HTTP).
//
// # Observing streams
//
// RecordFailures and TimeFirstByte wrap a Dialer for the status page and
// the metrics: the first is told of each failed dial (and of a stream
// whose optimistic connect fails on its first read) with FailureKind's
// kind and a message that never names the destination, the second of
// each stream's time to its first byte. SplitIPv6 sends streams to IPv6
// literals to a second Dialer (a pool of circuits whose exits reach IPv6).
// The wrappers are no Resolver: WithResolver adds one. IsolationKeyFor is the isolation key a proxy
// client's credentials give, for the control API.
package proxy
