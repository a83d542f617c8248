package testutil

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// fakeSOCKS answers one SOCKS5 handshake with reply code, bound address
// type atyp, then echoes.
func fakeSOCKS(t *testing.T, code, atyp byte) string {
	addr, _ := Serve(t, func(c net.Conn) {
		var greet [3]byte
		if _, err := io.ReadFull(c, greet[:]); err != nil {
			return
		}
		_, _ = c.Write([]byte{5, 0})
		var head [5]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return
		}
		rest := make([]byte, int(head[4])+2)
		if _, err := io.ReadFull(c, rest); err != nil {
			return
		}
		reply := []byte{5, code, 0, atyp}
		switch atyp {
		case 1:
			reply = append(reply, 127, 0, 0, 1, 0, 80)
		case 3:
			reply = append(reply, 4, 'h', 'o', 's', 't', 0, 80)
		case 4:
			reply = append(reply, make([]byte, 18)...)
		}
		_, _ = c.Write(reply)
		_, _ = io.Copy(c, c)
	})
	return addr.String()
}

func TestSOCKSDial(t *testing.T) {
	for _, tc := range []struct {
		name       string
		code, atyp byte
		wantCode   int // -1: connected
	}{
		{"ipv4 bound", 0, 1, -1},
		{"name bound", 0, 3, -1},
		{"ipv6 bound", 0, 4, -1},
		{"refused", 5, 1, 5},
		{"bad address type", 0, 9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := SOCKSDial(ctx, fakeSOCKS(t, tc.code, tc.atyp), "example.com:80")
			switch {
			case tc.wantCode < 0:
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				var b [4]byte
				if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "ping" {
					t.Fatalf("echo %q, %v: the reply's address was not consumed", b, err)
				}
			case tc.wantCode > 0:
				if !IsSOCKSCode(err, byte(tc.wantCode)) {
					t.Fatalf("error %v, want SOCKS reply %d", err, tc.wantCode)
				}
			default:
				if _, ok := errors.AsType[*SOCKSError](err); err == nil || ok {
					t.Fatalf("error %v, want a protocol error", err)
				}
			}
		})
	}
}
