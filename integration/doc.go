// Package integration tests the pikcio binary as users run it: it builds
// cmd/pikcio, starts separate processes on loopback (a bootstrap relay,
// relays, exits, a client, or `pikcio demo`), fetches files through them
// with curl, reloads configurations with SIGHUP and stops everything with
// signals. It has no code of its own.
package integration
