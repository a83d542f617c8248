package tis

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writeJSONState writes the state file an older TIS kept, for the people
// given (each enrolled with two serials), with revoked serials and a list
// of sequence seq.
func writeJSONState(t *testing.T, dir string, people map[string]testNode, revoked []Serial, seq uint64) map[string][]Serial {
	t.Helper()
	root, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := jsonState{Version: 1, Enrolled: map[string]*jsonEntry{}, Keys: map[string]string{}}
	issued := map[string][]Serial{}
	for email, n := range people {
		p, err := normalizeProperties("Person", email)
		if err != nil {
			t.Fatal(err)
		}
		owner := hexHash(p.emailIndex(root.secret))
		e := &jsonEntry{Binding: hexHash(p.binding(root.secret, n.pub(t), n.mkey.Public().(ed25519.PublicKey)))}
		for range 2 {
			var s Serial
			rand.Read(s[:])
			e.Serials = append(e.Serials, s.String())
			issued[email] = append(issued[email], s)
		}
		st.Enrolled[owner] = e
		st.Keys[hexHash(keyIndex(root.secret, n.pub(t)))] = owner
	}
	for _, s := range revoked {
		st.Revoked = append(st.Revoked, s.String())
	}
	slices.Sort(st.Revoked)
	now := time.Now().UTC().Truncate(time.Second)
	l := &RevocationList{Sequence: seq, IssuedAt: now, NextUpdate: now.Add(DefaultRevocationLifetime), Serials: revoked}
	slices.SortFunc(l.Serials, func(a, b Serial) int { return slices.Compare(a[:], b[:]) })
	if err := l.sign(root.key); err != nil {
		t.Fatal(err)
	}
	if st.RevocationList, err = l.Encode(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return issued
}

func TestMigrateJSONState(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			url := db(t)
			dir := filepath.Join(t.TempDir(), "tis")
			root, err := Init(dir)
			if err != nil {
				t.Fatal(err)
			}
			alice, bob := newTestNode(t), newTestNode(t)
			// Bob's first serial was revoked, at list sequence 7.
			issued := writeJSONStateRevoking(t, dir, alice, bob, 7)

			tt := &testTIS{dir: dir, root: root, mail: &DemoMailer{Quiet: true}}
			tt.start(t, ServerOptions{DB: url})
			ctx := testCtx(t)
			l, err := tt.client().FetchRevocations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if l.Sequence != 7 || !l.Revoked(issued["bob@example.org"][0]) || l.Revoked(issued["alice@example.org"][0]) {
				t.Fatalf("revocation list after migration: sequence %d, %v", l.Sequence, l.Serials)
			}
			// Alice is enrolled with her keys: she renews without a code and
			// keeps her IDs; Bob is blocked.
			c := tt.client()
			c.Code = nil
			e, err := c.Enroll(ctx, alice.key, alice.mkey, "Person", "alice@example.org")
			if err != nil {
				t.Fatalf("renewal after migration: %v", err)
			}
			p, _ := normalizeProperties("Person", "alice@example.org")
			r, _ := Open(dir)
			if e.NodeCert.ID != p.nodeID(r.secret) {
				t.Fatal("ID changed")
			}
			if _, err := c.Enroll(ctx, bob.key, bob.mkey, "Person", "bob@example.org"); !errors.Is(err, ErrBlocked) {
				t.Fatalf("revoked person after migration: %v, want ErrBlocked", err)
			}
			// A serial of the file can be revoked after it.
			if err := tt.srv.Revoke(issued["alice@example.org"][1]); err != nil {
				t.Fatal(err)
			}
			// The file stays until confirmed; a restart does not import it
			// again.
			tt.srv.Close()
			if _, err := os.Stat(filepath.Join(dir, StateFile)); err != nil {
				t.Fatalf("state file gone before confirmation: %v", err)
			}
			tt.start(t, ServerOptions{DB: url})
			if l, _ := tt.srv.RevocationList(); l.Sequence != 8 {
				t.Fatalf("sequence %d after restart, want 8", l.Sequence)
			}
			tt.srv.Close()
			if err := ConfirmMigration(ctx, dir, url); err != nil {
				t.Fatalf("ConfirmMigration: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("state file after confirmation: %v", err)
			}
		})
	}
}

// writeJSONStateRevoking writes a state of alice and bob with bob's first
// serial revoked.
func writeJSONStateRevoking(t *testing.T, dir string, alice, bob testNode, seq uint64) map[string][]Serial {
	t.Helper()
	issued := writeJSONState(t, dir, map[string]testNode{"alice@example.org": alice, "bob@example.org": bob}, nil, seq)
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st jsonState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	root, _ := Open(dir)
	rev := issued["bob@example.org"][0]
	st.Revoked = []string{rev.String()}
	now := time.Now().UTC().Truncate(time.Second)
	l := &RevocationList{Sequence: seq, IssuedAt: now, NextUpdate: now.Add(DefaultRevocationLifetime), Serials: []Serial{rev}}
	if err := l.sign(root.key); err != nil {
		t.Fatal(err)
	}
	st.RevocationList, _ = l.Encode()
	b, _ = json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return issued
}
