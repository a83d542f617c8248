package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// testTIS starts a TIS on the loopback and returns its directory, address
// and root key.
func testTIS(t *testing.T) (dir, addr string, root []byte) {
	t.Helper()
	s := tistest.Start(t, nil)
	return s.Dir, s.Addr, s.Root
}

// enrolledDir enrolls a new data directory and writes a configuration
// file for it (a client with only its status server); it returns both.
func enrolledDir(t *testing.T, tisAddr string, root []byte, who string) (cfgPath, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	dataDir = filepath.Join(dir, "data")
	cfgPath = filepath.Join(dir, "pikcio.toml")
	key := tis.FormatKey(root)
	body := fmt.Sprintf(`[node]
listen = ["/ip4/127.0.0.1/tcp/0"]
data_dir = %q

[log]
level = "warn"

[client]
socks_listen = ""
http_listen = ""
status_listen = "127.0.0.1:0"

[tis]
root_key = %q
url = %q
`, dataDir, key, tisAddr)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run("enroll", "--tis", tisAddr, "--tis-key", key, "--name", who, "--email", strings.ToLower(who)+"@demo.invalid", "--data", dataDir)
	if code != exitOK {
		t.Fatalf("enroll %s: exit %d: %s", who, code, errOut)
	}
	return cfgPath, dataDir
}

// startNode runs the node of cfgPath until the test ends.
func startNode(t *testing.T, cfgPath string) *node.Node {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(t.Context(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		_ = nd.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd
}

func matryoshkaID(t *testing.T, dataDir string) tis.ID {
	t.Helper()
	en, _, err := tis.LoadEnrollment(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return en.MatryoshkaCert.ID
}

func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errOut := run(args...)
	if code != exitOK {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

// TestContactsAndTrust: a real TIS, two enrolled users, the inviter's
// node running: invite, accept, list, vouch, withdraw, seeds,
// attestations, trust show and remove, as a user runs them.
func TestContactsAndTrust(t *testing.T) {
	tisDir, tisAddr, root := testTIS(t)
	cfgA, dirA := enrolledDir(t, tisAddr, root, "Alice")
	cfgB, dirB := enrolledDir(t, tisAddr, root, "Bob")
	idA, idB := matryoshkaID(t, dirA), matryoshkaID(t, dirB)

	// No node running yet: no invite.
	if code, _, errOut := run("contacts", "invite", "--name", "Bob", "--config", cfgA); code != exitError || !strings.Contains(errOut, "not running") {
		t.Fatalf("invite without a node: exit %d, %q", code, errOut)
	}
	nd := startNode(t, cfgA)

	invite, note := mustRun(t, "contacts", "invite", "--name", "Bob", "--lifetime", "1h", "--config", cfgA)
	invite = strings.TrimSpace(invite)
	if !strings.HasPrefix(invite, trust.InvitePrefix) || strings.Contains(invite, "\n") || !strings.Contains(note, "only to Bob") {
		t.Fatalf("invite: stdout %q, stderr %q", invite, note)
	}
	out, _ := mustRun(t, "contacts", "accept", invite, "--name", "Alice", "--data-dir", dirB, "--config", cfgB)
	if want := "added Alice (" + idA.String()[:16] + ")"; strings.TrimSpace(out) != want {
		t.Fatalf("accept: %q, want %q", out, want)
	}
	if code, _, errOut := run("contacts", "accept", invite, "--name", "Alice", "--config", cfgB); code != exitError || !strings.Contains(errOut, "already used") {
		t.Fatalf("second accept: exit %d, %q", code, errOut)
	}

	// Each side lists the other under its own name, which only its own
	// contacts file holds.
	for _, c := range []struct {
		cfg, dir, own, other string
		id                   tis.ID
	}{{cfgA, dirA, "Bob", "Alice", idB}, {cfgB, dirB, "Alice", "Bob", idA}} {
		out, _ := mustRun(t, "contacts", "list", "--config", c.cfg)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], c.own+" ") || !strings.Contains(lines[1], c.id.String()) {
			t.Fatalf("list in %s:\n%s", c.dir, out)
		}
		b, err := os.ReadFile(filepath.Join(c.dir, trust.ContactsFile))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.own) || strings.Contains(string(b), c.other) {
			t.Fatalf("%s holds %q: %v, %q: %v", c.dir, c.own, strings.Contains(string(b), c.own), c.other, strings.Contains(string(b), c.other))
		}
	}
	// The node of Alice's contact Bob is known from his certificate.
	out, _ = mustRun(t, "contacts", "list", "--config", cfgA)
	if strings.Contains(out, " - ") {
		t.Fatalf("no node for Bob:\n%s", out)
	}

	// Vouch by name (any case), withdraw, and their edits of trust.json.
	out, errOut := mustRun(t, "trust", "vouch", "aLiCe", "--weight", "70", "--config", cfgB)
	if !strings.Contains(out, "vouched for Alice") || !strings.Contains(errOut, "publishes it within seconds") {
		t.Fatalf("vouch: %q %q", out, errOut)
	}
	own, err := trust.LoadOwn(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Vouches) != 1 || own.Vouches[0].Vouchee != idA || own.Vouches[0].Voucher != idB || own.Vouches[0].Weight != 70 {
		t.Fatalf("trust.json after vouch: %+v", own.Vouches)
	}
	if code, _, errOut := run("trust", "vouch", idB.String(), "--config", cfgB); code != exitUsage || !strings.Contains(errOut, "your own identity") {
		t.Fatalf("vouch for oneself: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run("trust", "vouch", "Carol", "--config", cfgB); code != exitError || !strings.Contains(errOut, "no such contact") {
		t.Fatalf("vouch for a stranger's name: exit %d, %q", code, errOut)
	}
	mustRun(t, "trust", "withdraw", idA.String(), "--config", cfgB)
	if own, err = trust.LoadOwn(dirB); err != nil {
		t.Fatal(err)
	}
	if len(own.Vouches) != 0 || len(own.Withdrawals) != 1 || own.Withdrawals[0].Vouchee != idA {
		t.Fatalf("trust.json after withdraw: %+v %+v", own.Vouches, own.Withdrawals)
	}
	if code, _, errOut := run("trust", "withdraw", "Alice", "--config", cfgB); code != exitError || !strings.Contains(errOut, "have not vouched") {
		t.Fatalf("second withdraw: exit %d, %q", code, errOut)
	}

	// Seeds of the TIS.
	mustRun(t, "tis", "seed", "add", "--data", tisDir, idA.String(), idB.String())
	mustRun(t, "tis", "seed", "remove", idB.String(), "--data", tisDir)
	out, _ = mustRun(t, "tis", "seed", "list", "--data", tisDir)
	if strings.TrimSpace(out) != idA.String() {
		t.Fatalf("seed list: %q", out)
	}

	// Attestations by the TIS root and by an attester key.
	code, _ := mustRun(t, "tis", "attest", "--data", tisDir, idB.String(), "email-verified")
	out, _ = mustRun(t, "trust", "attestation", "add", strings.TrimSpace(code), "--config", cfgB)
	if !strings.Contains(out, "email-verified") {
		t.Fatalf("attestation add: %q", out)
	}
	keyFile := filepath.Join(t.TempDir(), "attester.key")
	out, _ = mustRun(t, "tis", "attest", "--new-key", keyFile)
	if _, err := tis.ParseKey(strings.TrimPrefix(strings.TrimSpace(out), "attester key: ")); err != nil {
		t.Fatalf("new key: %q: %v", out, err)
	}
	code, _ = mustRun(t, "tis", "attest", "--key", keyFile, "--lifetime", "24h", idB.String(), "account-linked:forum")
	if _, errOut := mustRun(t, "trust", "attestation", "add", code, "--config", cfgB); !strings.Contains(errOut, "trust.attesters") {
		t.Fatalf("attestation by an unlisted attester: no note in %q", errOut)
	}
	code, _ = mustRun(t, "tis", "attest", "--data", tisDir, idA.String(), "email-verified")
	if c, _, errOut := run("trust", "attestation", "add", code, "--config", cfgB); c != exitError || !strings.Contains(errOut, "not about you") {
		t.Fatalf("someone else's attestation: exit %d, %q", c, errOut)
	}
	if own, err = trust.LoadOwn(dirB); err != nil {
		t.Fatal(err)
	}
	kinds := []string{}
	for _, a := range own.Attestations {
		kinds = append(kinds, a.Kind)
	}
	if strings.Join(kinds, ",") != "email-verified,account-linked:forum" {
		t.Fatalf("attestations in trust.json: %q", kinds)
	}

	// trust show against the running node.
	status := nd.StatusAddr().String()
	out, _ = mustRun(t, "trust", "show", "bob", "--json", "--status", status)
	var rep web.TrustReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("trust show --json: %v\n%s", err, out)
	}
	if rep.Kind != "identity" || rep.ID != idB.String() || rep.Contact != "Bob" {
		t.Fatalf("report %+v", rep)
	}
	out, _ = mustRun(t, "trust", "show", idB.String(), "--status", status)
	t.Logf("trust show:\n%s", out)
	for _, want := range []string{"identity:", idB.String(), "contact:", "Bob", "score:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("trust show lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustRun(t, "trust", "show", nd.ID().String(), "--status", status)
	if !strings.Contains(out, "relay:") || !strings.Contains(out, "band:") {
		t.Fatalf("trust show of a peer ID:\n%s", out)
	}
	if c, _, errOut := run("trust", "show", "Nobody At All", "--status", status); c != exitError || !strings.Contains(errOut, "contact name") {
		t.Fatalf("trust show of an unknown name: exit %d, %q", c, errOut)
	}

	// Remove.
	out, _ = mustRun(t, "contacts", "remove", "BOB", "--config", cfgA)
	if !strings.HasPrefix(out, "removed Bob") {
		t.Fatalf("remove: %q", out)
	}
	if out, errOut := mustRun(t, "contacts", "list", "--config", cfgA); out != "" || !strings.Contains(errOut, "no contacts") {
		t.Fatalf("list after remove: %q %q", out, errOut)
	}
	if c, _, errOut := run("contacts", "remove", "Bob", "--config", cfgA); c != exitError || !strings.Contains(errOut, "no such contact") {
		t.Fatalf("second remove: exit %d, %q", c, errOut)
	}
}

// TestTrustShowNoNode: a status address nobody listens on is reported as
// a node that is not running.
func TestTrustShowNoNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	code, _, errOut := run("trust", "show", "alice", "--status", addr)
	if code != exitError || !strings.Contains(errOut, "no node is running") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

// TestAcceptErrors: what accept refuses before it dials.
func TestAcceptErrors(t *testing.T) {
	_, tisAddr, root := testTIS(t)
	cfg, dir := enrolledDir(t, tisAddr, root, "Carol")
	expired := &trust.Invite{Expires: time.Now().Add(-time.Hour).Truncate(time.Second)}
	// A node that does not run: nothing listens on port 1.
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := readAddrsOf(t, "/ip4/127.0.0.1/tcp/1/p2p/"+pid.String())
	if err != nil {
		t.Fatal(err)
	}
	expired.Addrs = a
	valid := &trust.Invite{Expires: time.Now().Add(time.Hour).Truncate(time.Second), Addrs: a}
	noRoot := filepath.Join(t.TempDir(), "noroot.toml")
	if err := os.WriteFile(noRoot, []byte(fmt.Sprintf("[node]\ndata_dir = %q\n", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"expired", []string{"contacts", "accept", expired.String(), "--name", "Dan", "--config", cfg}, exitError, "expired"},
		{"no root key", []string{"contacts", "accept", valid.String(), "--name", "Dan", "--config", noRoot}, exitUsage, "tis.root_key"},
		{"not enrolled", []string{"contacts", "accept", valid.String(), "--name", "Dan", "--config", cfg, "--data", t.TempDir()}, exitError, "not enrolled"},
		{"unreachable", []string{"contacts", "accept", valid.String(), "--name", "Dan", "--config", cfg}, exitError, "inviter's node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(tc.args...)
			first, _, _ := strings.Cut(errOut, "\n")
			if code == exitError && strings.TrimSpace(errOut) != first {
				t.Fatalf("stderr of more than one line: %q", errOut)
			}
			if code != tc.code || !strings.Contains(first, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q on its first line)", code, tc.code, errOut, tc.want)
			}
		})
	}
}

func readAddrsOf(t *testing.T, lines ...string) ([]ma.Multiaddr, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, datadir.AddrsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	return readAddrs(dir)
}

// TestAcceptInterrupted: SIGTERM ends an accept waiting on an inviter
// that never answers, long before its timeout.
func TestAcceptInterrupted(t *testing.T) {
	_, tisAddr, root := testTIS(t)
	cfg, _ := enrolledDir(t, tisAddr, root, "Dora")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() { // accepts and stays silent until the listener closes
		defer close(done)
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := readAddrsOf(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", l.Addr().(*net.TCPAddr).Port, pid))
	if err != nil {
		t.Fatal(err)
	}
	inv := &trust.Invite{Expires: time.Now().Add(time.Hour).Truncate(time.Second), Addrs: addrs}
	r := start(t, runContacts, "accept", inv.String(), "--name", "Eve", "--config", cfg)
	time.Sleep(300 * time.Millisecond)
	// "interrupted", not the timeout's "no answer": the signal ended it.
	if code := r.stop(t); code != exitError || !strings.Contains(r.errOut.String(), "interrupted") {
		t.Fatalf("exit %d, stderr %q", code, r.errOut.String())
	}
}

// TestAcceptOfflineServiceCard: an accept made while the accepter's node
// is not running still tells the inviter the accepter's service card
// (its first [[services]] and its client key) and learns the inviter's.
func TestAcceptOfflineServiceCard(t *testing.T) {
	_, tisAddr, root := testTIS(t)
	cfgA, dirA := enrolledDir(t, tisAddr, root, "Alice")
	cfgB, dirB := enrolledDir(t, tisAddr, root, "Bob")
	blogA, _ := mustRun(t, "service", "add", "shop", "--target", "127.0.0.1:8081", "--config", cfgA)
	blogB, _ := mustRun(t, "service", "add", "blog", "--target", "127.0.0.1:8080", "--config", cfgB)
	startNode(t, cfgA)
	invite, _ := mustRun(t, "contacts", "invite", "--name", "Bob", "--config", cfgA)
	mustRun(t, "contacts", "accept", strings.TrimSpace(invite), "--name", "Alice", "--config", cfgB)

	keyB, err := service.KeyDirOf(dirB).ClientKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		dir, name, addr string
		clientKey       []byte // nil: not checked
	}{
		{dirA, "Bob", blogB, keyB.PublicKey().Bytes()},
		{dirB, "Alice", blogA, nil},
	} {
		cs, err := trust.OpenContacts(side.dir, root)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cs.Find(side.name)
		if err != nil {
			t.Fatal(err)
		}
		if c.Service == nil {
			t.Fatalf("%s has no service card of %s", side.dir, side.name)
		}
		if got := service.Address(c.Service.Address).Host(); got != strings.TrimSpace(side.addr) {
			t.Errorf("card of %s: %s, want %s", side.name, got, side.addr)
		}
		if side.clientKey != nil && string(c.Service.ClientKey[:]) != string(side.clientKey) {
			t.Errorf("card of %s: another client key", side.name)
		}
	}
	out, _ := mustRun(t, "contacts", "list", "--config", cfgA)
	if !strings.Contains(out, "bob.pikcio") {
		t.Errorf("contacts list does not name bob.pikcio:\n%s", out)
	}
}
