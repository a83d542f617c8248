package tis_test

import (
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

func TestMountTokens(t *testing.T) {
	ts := tistest.Start(t, nil)
	get := func() (int, string) {
		resp, err := http.Get(ts.URL + tis.PathTokens + "keys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(); code != http.StatusNotFound {
		t.Fatalf("before MountTokens: %d, want 404", code)
	}
	ts.Server.MountTokens(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	if code, body := get(); code != http.StatusOK || body != tis.PathTokens+"keys" {
		t.Fatalf("after MountTokens: %d %q", code, body)
	}
}

func TestSignTokenKey(t *testing.T) {
	ts := tistest.Start(t, nil)
	body := []byte("a token key")
	sig := ts.Server.SignTokenKey(body)
	other := tistest.Start(t, nil)
	for _, tc := range []struct {
		name string
		root ed25519.PublicKey
		body []byte
		sig  []byte
		want error
	}{
		{"signed", ts.Root, body, sig, nil},
		{"another root", other.Root, body, sig, tis.ErrSignature},
		{"other body", ts.Root, []byte("a token kez"), sig, tis.ErrSignature},
		{"root signature without the context", ts.Root, body, ed25519.Sign(ts.RootKey, body), tis.ErrSignature},
		{"short signature", ts.Root, body, sig[:10], tis.ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tis.VerifyTokenKey(tc.root, tc.body, tc.sig); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyTokenKey: %v, want %v", err, tc.want)
			}
		})
	}
}
