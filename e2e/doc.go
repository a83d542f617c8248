// Package e2e holds end-to-end tests and benchmarks of pikcio's client:
// real SOCKS5 and HTTP clients (curl, headless Chromium, golang.org/x/net/proxy)
// through the proxy front ends and real 3-hop circuits over libp2p on
// loopback, to local servers. It has no code of its own.
package e2e
