package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/internal/privfile"
)

// AddrsFile lists, while the node runs, its addresses with /p2p/ (one per
// line): `pikcio contacts invite` puts them into the invite code.
const AddrsFile = "node.addrs"

// WriteAddrs replaces dir's AddrsFile with addrs.
func WriteAddrs(dir string, addrs []ma.Multiaddr) error {
	var b strings.Builder
	for _, a := range addrs {
		b.WriteString(a.String() + "\n")
	}
	return privfile.Replace(filepath.Join(dir, AddrsFile), []byte(b.String()))
}

// RemoveAddrs removes dir's AddrsFile: the node stopped.
func RemoveAddrs(dir string) { _ = os.Remove(filepath.Join(dir, AddrsFile)) }

// ReadAddrs reads the running node's addresses from dir's AddrsFile, at
// most max of them. A missing or empty file says the node is not running.
func ReadAddrs(dir string, max int) ([]ma.Multiaddr, error) {
	path := filepath.Join(dir, AddrsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the node of %s is not running: start it first (pikcio client or pikcio relay)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read the node's addresses: %w", err)
	}
	var addrs []ma.Multiaddr
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a, err := ma.NewMultiaddr(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		addrs = append(addrs, a)
		if len(addrs) == max {
			break
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("the node of %s lists no addresses: is it running?", dir)
	}
	return addrs, nil
}
