package token

import (
	"fmt"
	"path/filepath"

	"github.com/pikcio/pikcio/tis"
)

// KeyFile is the file in a TIS directory that keeps the token private
// keys (IssuerOptions.KeyFile), mode 0600.
const KeyFile = "token-keys"

// Mount makes the issuer of the TIS srv whose directory is dir (its keys
// in dir/KeyFile unless opts.KeyFile says otherwise) and serves it under
// tis.PathTokens. Every way of running a TIS calls it: the TIS command,
// localnet, the tests' TIS.
func Mount(srv *tis.Server, dir string, opts IssuerOptions) (*Issuer, error) {
	if opts.KeyFile == "" {
		opts.KeyFile = filepath.Join(dir, KeyFile)
	}
	is, err := NewIssuer(srv, opts)
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	srv.MountTokens(is.Handler())
	return is, nil
}
