package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/tis"
)

// enrollee is the made-up person of node i.
func enrollee(i int) *Enrollee {
	return &Enrollee{Name: fmt.Sprintf("Ada Lovelace %d", i), Email: fmt.Sprintf("Ada.Lovelace%d@Demo.invalid", i)}
}

// startEnrolling starts n relays (the last two exits) and a client (node
// n), each with who(i) as Options.Enroll, with certificates required.
func startEnrolling(t *testing.T, s *testTIS, cfgs []*config.Config, who func(i int) *Enrollee) *testNet {
	t.Helper()
	net := &testNet{}
	var boot []string
	for i, cfg := range cfgs {
		s.use(cfg)
		cfg.Node.Bootstrap = boot
		if i == len(cfgs)-1 {
			net.client = startNode(t, cfg, Options{AllowSameSubnet: true, Enroll: who(i)})
			break
		}
		nd := startNode(t, cfg, Options{Enroll: who(i)})
		net.relays = append(net.relays, nd)
		if i == 0 {
			for _, a := range nd.Addrs() {
				boot = append(boot, a.String())
			}
		}
	}
	return net
}

// TestEnrollOnFirstStart: relays and a client given Options.Enroll enroll
// themselves at their first start and build a circuit with certificates
// required; a second start reuses the saved enrollment without the
// properties (and ignores other ones); no data directory holds the name or
// the e-mail.
func TestEnrollOnFirstStart(t *testing.T) {
	s := newTestTIS(t)
	const n = 3
	var cfgs []*config.Config
	for i := range n {
		cfgs = append(cfgs, relayConfig(t, i >= n-2, []string{"accept 127.0.0.1:*"}, nil))
	}
	cfgs = append(cfgs, testConfig(t))

	net := startEnrolling(t, s, cfgs, enrollee)
	net.waitReady(t)
	var serials []tis.Serial
	for i, cfg := range cfgs {
		en, _, err := tis.LoadEnrollment(cfg.Node.DataDir)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		serials = append(serials, en.NodeCert.Serial)
	}
	net.close()

	// Second start: the client without properties, the relays with other
	// ones, which would be refused if they were sent (one key, one e-mail).
	net = startEnrolling(t, s, cfgs, func(i int) *Enrollee {
		if i == n {
			return nil
		}
		return &Enrollee{Name: "Someone Else", Email: fmt.Sprintf("else%d@demo.invalid", i)}
	})
	net.waitReady(t)
	for i, cfg := range cfgs {
		en, _, err := tis.LoadEnrollment(cfg.Node.DataDir)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if en.NodeCert.Serial != serials[i] {
			t.Fatalf("node %d enrolled again", i)
		}
	}
	net.close()

	for i, cfg := range cfgs {
		who := enrollee(i)
		needles := [][]byte{[]byte(who.Name), []byte(who.Email), []byte(strings.ToLower(who.Email)), []byte("Lovelace"), []byte("demo.invalid")}
		err := filepath.WalkDir(cfg.Node.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, nd := range needles {
				if bytes.Contains(bytes.ToLower(data), bytes.ToLower(nd)) {
					return fmt.Errorf("%s holds %q", path, nd)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// TestEnrollErrors: with properties but without tis.url a node that is
// not enrolled does not start; with a TIS that refuses, New fails with the
// TIS's error.
func TestEnrollErrors(t *testing.T) {
	s := newTestTIS(t)
	cfg := testConfig(t)
	s.use(cfg)
	cfg.TIS.URL = ""
	if _, err := New(t.Context(), cfg, Options{Enroll: enrollee(0)}); !errors.Is(err, tis.ErrNotEnrolled) {
		t.Fatalf("New without tis.url: %v, want ErrNotEnrolled", err)
	}
	s.use(cfg)
	if _, err := New(t.Context(), cfg, Options{Enroll: &Enrollee{Name: "", Email: "not an e-mail"}}); !errors.Is(err, tis.ErrBadProperties) {
		t.Fatalf("New with bad properties: %v, want tis.ErrBadProperties", err)
	}
	if _, _, err := tis.LoadEnrollment(cfg.Node.DataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("enrollment after a refusal: %v", err)
	}
}

// TestEnrollInterrupted: a first-start enrollment with a TIS that never
// answers ends when New's context does (SIGINT in the CLI), not after
// tis.EnrollTimeout, and leaves no enrollment and no lock behind.
func TestEnrollInterrupted(t *testing.T) {
	s := newTestTIS(t)
	cfg := testConfig(t)
	s.use(cfg)
	cfg.TIS.URL = tis.BaseURL(testutil.SilentServer(t)) // accepts, never answers

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := New(ctx, cfg, Options{Enroll: enrollee(0)})
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("New: %v, want context.Canceled", err)
	}
	if took > 5*time.Second {
		t.Fatalf("New returned %v after the cancel", took)
	}
	if _, _, err := tis.LoadEnrollment(cfg.Node.DataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("enrollment after an interrupted one: %v", err)
	}
	// The data directory is free again.
	s.use(cfg)
	n, err := New(t.Context(), cfg, Options{Enroll: enrollee(0)})
	if err != nil {
		t.Fatalf("New after the interrupted one: %v", err)
	}
	_ = n.Close()
}
