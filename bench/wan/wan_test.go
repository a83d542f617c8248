package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the relay processes, as the
// command does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		if err := runRelay(os.Args[2:]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the benchmark briefly, over TCP+yamux and over QUIC, and
// checks that it prints every figure for each delay.
func TestSmoke(t *testing.T) {
	for _, quic := range []bool{false, true} {
		name := "tcp"
		if quic {
			name = "quic"
		}
		t.Run(name, func(t *testing.T) {
			delays := []time.Duration{0, 5 * time.Millisecond}
			if quic {
				delays = delays[1:] // one is enough to show QUIC links work
			}
			lines := runLines(t, config{delays: delays, runs: 1, bulkTime: 300 * time.Millisecond, quick: true, quic: quic})
			if len(lines) != 2+len(delays) || !strings.HasPrefix(lines[len(lines)-1], "5ms") {
				t.Fatalf("output:\n%s", strings.Join(lines, "\n"))
			}
			for _, l := range lines[2:] {
				if strings.Count(l, " ms") != 2 || strings.Contains(l, "?") {
					t.Fatalf("line without its figures: %q", l)
				}
			}
		})
	}
}

// TestServiceSmoke runs the -service figures briefly and checks that each
// is printed.
func TestServiceSmoke(t *testing.T) {
	lines := runLines(t, config{delays: []time.Duration{5 * time.Millisecond}, runs: 1, bulkTime: 300 * time.Millisecond, quick: true, service: true})
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "5ms") || strings.Count(lines[2], " ms") != 3 {
		t.Fatalf("output:\n%s", strings.Join(lines, "\n"))
	}
}

// runLines runs the benchmark as cfg says (within two minutes), logs its
// output and returns it line by line.
func runLines(t *testing.T, cfg config) []string {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	return strings.Split(strings.TrimSpace(out.String()), "\n")
}
