// Package integration tests the pikcio binary as users run it: it builds
// cmd/pikcio, starts separate processes on loopback (a bootstrap relay,
// relays, exits, a client, or `pikcio demo`), fetches files through them
// with curl, reloads configurations with SIGHUP and stops everything with
// signals. It also kills relays (SIGKILL) under a running client and
// restarts them: TestFailover kills the exit, middle and guard of a running
// download, TestChurn one relay after another while a loop fetches (the
// fault benchmark bench/churn/run.sh runs it longer). It has no code of its
// own.
package integration
