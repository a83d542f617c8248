package testutil

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestEchoServer(t *testing.T) {
	port, accepted := EchoServer(t)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ping" {
		t.Fatalf("echo %q %v", got, err)
	}
	if accepted() != 1 {
		t.Fatalf("accepted %d", accepted())
	}
}

func TestFileServer(t *testing.T) {
	url, body := FileServer(t, 1000)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes, want %d", len(got), len(body))
	}
}

// TestCheckNoLeaks: a goroutine left running is found; once it ends it
// is not.
func TestCheckNoLeaks(t *testing.T) {
	stop := make(chan struct{})
	go leaker(stop)
	if len(goroutines("testutil.leaker")) != 1 {
		t.Fatal("the leaking goroutine was not found")
	}
	close(stop)
	CheckNoLeaks(t, "testutil.leaker")
	WaitFor(t, time.Second, "nothing", func() bool { return true })
}

func leaker(stop chan struct{}) { <-stop }

// TestProcStat reads this test's own entry: its parent, and CPU time that
// grows with work and agrees with getrusage.
func TestProcStat(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Spin until getrusage counts 300 ms more (however loaded the machine).
	for start, deadline := CPUTime(), time.Now().Add(time.Minute); CPUTime()-start < 300*time.Millisecond && time.Now().Before(deadline); {
	}
	ppid, cpu, err := ProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ppid != os.Getppid() {
		t.Fatalf("ppid %d, want %d", ppid, os.Getppid())
	}
	if own := CPUTime(); cpu < 250*time.Millisecond || cpu > own+50*time.Millisecond {
		t.Fatalf("cpu %v after 300 ms of spinning, getrusage says %v", cpu, own)
	}
	if _, _, err := ProcStat(-1); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
