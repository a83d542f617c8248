package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// Nothing at info level or above names a destination, whatever happens to
// the connection; goproxy's own messages included.
func TestNoDestinationsInInfoLogs(t *testing.T) {
	checkLeaks(t)
	hook := logtest.NewGlobal()
	t.Cleanup(func() { logrus.StandardLogger().ReplaceHooks(make(logrus.LevelHooks)) })

	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	e.builder.FailHost("secret-policy.test", endreason.ErrPolicy)
	port := strconv.Itoa(int(b.port))
	closed := strconv.Itoa(int(closedPort(t)))
	ok := "http://" + proxytest.ExitOnlyName + ":" + port + "/"

	socksGet(t, e.socksAddr, &xproxy.Auth{User: "secret-user", Password: "secret-pass"}, ok)
	for _, name := range []string{"secret-policy.test", "secret-nowhere.test"} {
		if rep, _ := socksRequest(t, e.socksAddr, "secret-user", "secret-pass", connectName(1, name, 443)); rep == 0 {
			t.Fatalf("%s: connected", name)
		}
	}
	for _, u := range []string{ok, "http://secret-policy.test/", "http://secret-nowhere.test/", "http://127.0.0.1:" + closed + "/"} {
		resp, err := httpProxyClient(t, "http://secret-user:secret-pass@"+e.httpAddr, nil).Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	for _, dest := range []string{"secret-policy.test:443", "secret-nowhere.test:443", "127.0.0.1:" + closed} {
		c := dialTimeout(t, e.httpAddr)
		_, _ = io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n")
		_, _ = http.ReadResponse(bufioReader(c), &http.Request{Method: "CONNECT"})
	}
	e.builder.Circuits()[0].Die()
	_ = e.server.Close()
	_ = e.pool.Close()

	if len(hook.AllEntries()) == 0 {
		t.Fatal("no log entries at all: the hook is not working")
	}
	for _, entry := range hook.AllEntries() {
		line, _ := entry.String()
		for _, secret := range []string{"secret", proxytest.ExitOnlyName, ":" + port, ":" + closed} {
			if strings.Contains(line, secret) {
				t.Errorf("%s log names %q: %s", entry.Level, secret, line)
			}
		}
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
