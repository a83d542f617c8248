package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/proxy"
)

// echoChildEnv makes the test binary an echo server on 127.0.0.1 that
// prints its port: thousands of connections then cost this process three
// descriptors each (SOCKS client, SOCKS server, exit), not four.
const echoChildEnv = "PIKCIO_E2E_ECHO_CHILD"

func init() {
	if os.Getenv(echoChildEnv) == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // the parent's end
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
	}
}

// echoChild starts the echo server process and returns its port.
func echoChild(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), echoChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var line [16]byte
	n, err := out.Read(line[:])
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("echo child said %q", line[:n])
	}
	return port
}

// TestOneGroupManyConnections: 5,000 concurrent SOCKS connections without
// credentials (one isolation group) all work. One circuit carries at most
// the exit's MaxStreamsPerCircuit (1,024) streams: the pool opens more
// circuits for the group, by its own cap and when the exit refuses a
// stream for a full circuit. Before, 3,976 of them failed. Under the race
// detector, 600 connections against an exit capped at 128 streams.
func TestOneGroupManyConnections(t *testing.T) {
	n, exitCap := 5000, 0
	if raceEnabled || testing.Short() {
		n, exitCap = 600, 128
	}
	// The pool's own cap matches the exit's: SOCKS replies success before
	// the exit answers (optimistic data), so a stream the exit refuses for
	// a full circuit cannot be moved to another circuit any more.
	net0 := newNetwork(t, proxy.PoolOptions{MaxStreamsPerCircuit: exitCap})
	if exitCap > 0 {
		l := net0.relays[2].Limits()
		l.MaxStreamsPerCircuit = exitCap
		net0.relays[2].SetLimits(l)
	}
	port := echoChild(t)
	net0.waitPrebuilt(t)
	d, err := xproxy.SOCKS5("tcp", net0.socks, nil, &net.Dialer{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu     sync.Mutex
		conns  []net.Conn
		failed int
		first  error
		wg     sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	sem := make(chan struct{}, 200)
	start := time.Now()
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := d.(xproxy.ContextDialer).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err = c.Write([]byte{7}); err == nil {
					_, err = io.ReadFull(c, make([]byte, 1))
				}
				_ = c.SetDeadline(time.Time{})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if first == nil {
					first = err
				}
				if c != nil {
					c.Close()
				}
				return
			}
			conns = append(conns, c) // kept open: the connections are concurrent
		})
	}
	wg.Wait()
	st := net0.pool.Stats()
	t.Logf("%d connections of one group open after %v: %d failed; pool: %d circuits, %d streams, %d groups, %d full retries",
		n, time.Since(start).Round(time.Millisecond), failed, st.Circuits, st.Streams, st.Groups, st.FullRetries)
	if failed > 0 {
		t.Fatalf("%d of %d connections of one isolation group failed; first: %v", failed, n, first)
	}
	if st.Streams != n {
		t.Fatalf("pool has %d streams open, want %d", st.Streams, n)
	}
}
