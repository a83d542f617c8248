package token

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/tis"
)

// KeyFile is the file in a TIS directory where issuers before the
// database kept the token private keys. Mount moves its keys into the
// store and removes it.
const KeyFile = "token-keys"

// maxKeyFile bounds what is read as a KeyFile.
const maxKeyFile = 1 << 20

// Mount makes the issuer of the TIS srv whose directory is dir, its keys
// and counts in srv's store (unless opts says otherwise), and serves it
// under tis.PathTokens. Every way of running a TIS calls it: the TIS
// command, localnet, the tests' TIS. A KeyFile left in dir by an older
// version is moved into the store first.
func Mount(srv *tis.Server, dir string, opts IssuerOptions) (*Issuer, error) {
	if opts.Keys == nil {
		opts.Keys = srv
		if err := importKeyFile(srv, filepath.Join(dir, KeyFile), opts.withDefaults().Period); err != nil {
			return nil, err
		}
	}
	if opts.Counter == nil {
		opts.Counter = srv
	}
	is, err := NewIssuer(srv, opts)
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	srv.MountTokens(is.Handler())
	return is, nil
}

// keyFile is the KeyFile's JSON form.
type keyFile struct {
	Version int `json:"version"`
	Keys    []struct {
		Period int64  `json:"period"`
		Key    []byte `json:"key"` // PKCS #1 DER
	} `json:"keys"`
}

// importKeyFile stores the keys of the KeyFile at path (periods of span)
// in ks, where their periods have none yet, and removes the file.
func importKeyFile(ks KeyStore, path string, span time.Duration) error {
	b, err := privfile.Read(path, maxKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token keys: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return fmt.Errorf("token keys %s: version %d: %w %v", path, f.Version, ErrMalformed, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, it := range f.Keys {
		if _, err := x509.ParsePKCS1PrivateKey(it.Key); err != nil {
			return fmt.Errorf("token keys %s: period %d: %w", path, it.Period, err)
		}
		if _, err := ks.TokenKey(ctx, span, it.Period, func() ([]byte, error) { return it.Key, nil }); err != nil {
			return fmt.Errorf("token keys %s: period %d: %w", path, it.Period, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("token keys: %w", err)
	}
	return nil
}
