package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/service/servicetest"
)

// startHost publishes a service of target on net and waits until its
// descriptor is up with want intro points.
func startHost(t *testing.T, net *servicetest.Network, target string, want int, log logrus.FieldLogger) (*service.Host, *servicetest.Builder) {
	t.Helper()
	id, err := service.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := net.NewBuilder(t)
	h, err := service.NewHost(id, service.HostOptions{Builder: b, Store: net.Store, Target: target, IntroPoints: want, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	testutil.WaitFor(t, 60*time.Second, "descriptor published", func() bool {
		st := h.Status()
		return !st.Published.IsZero() && len(st.IntroPoints) == want
	})
	return h, b
}

func echo(t *testing.T, c net.Conn, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, want %d", len(got), len(data))
	}
}

// TestHostDialer: a client reaches a published service by its address
// alone, twice over one joined circuit; what the DHT, the service's logs
// and its status hold names neither the address nor the client.
func TestHostDialer(t *testing.T) {
	net := servicetest.New(t, 6)
	port, _ := testutil.EchoServer(t)
	var logs testutil.SyncBuffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetLevel(logrus.DebugLevel)
	h, _ := startHost(t, net, fmt.Sprintf("127.0.0.1:%d", port), service.DefaultIntroPoints, log)

	cb := net.NewBuilder(t)
	d := service.NewDialer(service.DialerOptions{Builder: cb, Store: net.Store})
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := testutil.RandomBytes(t, 200<<10)
	for i := 0; i < 2; i++ {
		c, err := d.Dial(ctx, h.Address(), 80)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		echo(t, c, data)
		_ = c.Close()
	}
	if d.Joined() != 1 {
		t.Errorf("joined circuits: %d, want 1 (the second dial reuses it)", d.Joined())
	}
	testutil.WaitFor(t, 10*time.Second, "service sees its joined circuit", func() bool { return h.Status().Joined == 1 })

	addr := h.Address()
	for k, rec := range net.Store.Records() {
		if bytes.Contains(rec, addr[:]) || strings.Contains(string(rec), addr.String()) || strings.Contains(k, addr.String()) {
			t.Errorf("DHT record %s holds the service's key or address in the clear", k)
		}
	}
	client := cb.Client.Circuits()
	if len(client) == 0 {
		t.Fatal("client has no circuit")
	}
	clientID := cbHostID(cb)
	status := fmt.Sprintf("%+v", h.Status())
	for what, s := range map[string]string{"logs": logs.String(), "status": status} {
		if strings.Contains(s, clientID) {
			t.Errorf("service %s name the client %s", what, clientID)
		}
	}
}

func cbHostID(b *servicetest.Builder) string { return b.Host.ID().String() }

// TestHostReplacesIntroPoint: the one intro point dies; the service
// builds another, publishes at once, and a client whose cached descriptor
// names the dead one fetches the new one and connects.
func TestHostReplacesIntroPoint(t *testing.T) {
	net := servicetest.New(t, 6)
	port, _ := testutil.EchoServer(t)
	h, sb := startHost(t, net, fmt.Sprintf("127.0.0.1:%d", port), 1, nil)
	cb := net.NewBuilder(t)
	d := service.NewDialer(service.DialerOptions{Builder: cb, Store: net.Store})
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, h.Address(), 80)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, []byte("before"))
	_ = c.Close()
	_ = d.Close() // the descriptor stays cached; the joined circuit goes

	dead := h.Status().IntroPoints[0]
	puts := net.Store.Puts()
	sb.MarkDead(dead)
	cb.MarkDead(dead)
	net.Kill(net.Index(dead))
	testutil.WaitFor(t, 60*time.Second, "a new intro point published", func() bool {
		st := h.Status()
		return len(st.IntroPoints) == 1 && st.IntroPoints[0] != dead && net.Store.Puts() > puts
	})
	d = service.NewDialer(service.DialerOptions{Builder: cb, Store: net.Store})
	t.Cleanup(func() { _ = d.Close() })
	start := time.Now()
	c, err = d.Dial(ctx, h.Address(), 80)
	if err != nil {
		t.Fatalf("dial after the intro point died: %v", err)
	}
	t.Logf("connected %v after the republish", time.Since(start))
	echo(t, c, []byte("after"))
	_ = c.Close()
}
