package tis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// jsonState is the state file (StateFile) of TIS versions before the
// database: the whole state, rewritten on every change.
type jsonState struct {
	Version        int                   `json:"version"`
	Enrolled       map[string]*jsonEntry `json:"enrolled"`
	Keys           map[string]string     `json:"keys"`
	Revoked        []string              `json:"revoked"`
	RevocationList []byte                `json:"revocation_list"`
}

type jsonEntry struct {
	Binding string   `json:"binding"`
	Serials []string `json:"serials"`
}

// metaMigrated holds the SHA-256 of the state file a store was migrated
// from.
const metaMigrated = "migrated_state_json"

// ErrMigrated reports a state file that is not the one the store was
// migrated from, or a store that holds another TIS.
var ErrMigrated = errors.New("state file and database disagree")

// readJSONState reads and checks the state file, nil if there is none.
func readJSONState(dir string) (*jsonState, string, error) {
	path := filepath.Join(dir, StateFile)
	b, err := readPrivate(path, 1<<31)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("state: %w", err)
	}
	sum := sha256.Sum256(b)
	st := &jsonState{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, "", fmt.Errorf("state %s: %w", path, err)
	}
	if st.Version != 1 {
		return nil, "", fmt.Errorf("state %s: version %d: %w", path, st.Version, ErrMalformed)
	}
	if !slices.IsSorted(st.Revoked) {
		return nil, "", fmt.Errorf("state %s: revoked serials not sorted: %w", path, ErrMalformed)
	}
	for _, e := range st.Enrolled {
		if e == nil {
			return nil, "", fmt.Errorf("state %s: empty entry: %w", path, ErrMalformed)
		}
		for _, h := range e.Serials {
			if serial, err := ParseSerial(h); err != nil || serial.String() != h {
				return nil, "", fmt.Errorf("state %s: serial %q: %w", path, h, ErrMalformed)
			}
		}
	}
	for _, h := range st.Revoked {
		if serial, err := ParseSerial(h); err != nil || serial.String() != h {
			return nil, "", fmt.Errorf("state %s: revoked serial %q: %w", path, h, ErrMalformed)
		}
	}
	return st, hex.EncodeToString(sum[:]), nil
}

// migrateJSON moves a state file into the store on the first start, in one
// transaction. The file stays until ConfirmMigration; later starts check
// that it is the file migrated and otherwise ignore it.
func (s *Server) migrateJSON(ctx context.Context) error {
	st, sum, err := readJSONState(s.root.dir)
	if err != nil || st == nil {
		return err
	}
	l, err := ParseRevocationList(st.RevocationList, s.root.PublicKey())
	if err != nil {
		return fmt.Errorf("state %s: revocation list: %w", StateFile, err)
	}
	people := 0
	err = s.store.Update(ctx, func(tx Tx) error {
		people = 0
		done, err := tx.Meta(metaMigrated)
		if err != nil {
			return err
		}
		if done == sum {
			return nil
		}
		if done != "" {
			return fmt.Errorf("%s changed since it was migrated: %w", StateFile, ErrMigrated)
		}
		if seq, err := tx.RevocationSeq(); err != nil || seq != 0 {
			return errors.Join(err, fmt.Errorf("the database holds a TIS already; %s not migrated: %w", StateFile, ErrMigrated))
		}
		revoked := map[string]bool{}
		for _, h := range st.Revoked {
			revoked[h] = true
		}
		// The state kept no expiry per serial: keep revoked ones listed for
		// a whole certificate lifetime from now.
		expires := s.opts.Now().Add(s.opts.CertLifetime)
		for owner, e := range st.Enrolled {
			p := &person{Owner: owner, Binding: e.Binding, Issues: len(e.Serials) / 2}
			var rev []string
			for _, h := range e.Serials {
				if err := tx.PutCerts(owner, expires, h); err != nil {
					return err
				}
				if revoked[h] {
					rev = append(rev, h)
					p.Blocked = true
				}
			}
			if _, err := tx.Revoke(rev); err != nil {
				return err
			}
			if err := tx.PutPerson(p); err != nil {
				return err
			}
			people++
		}
		for k, owner := range st.Keys {
			if err := tx.PutKeys(owner, k); err != nil {
				return err
			}
		}
		// Keep the sequence: nodes refuse a list older than theirs.
		if err := tx.PutRevocationList(l.Sequence, [][]byte{st.RevocationList}); err != nil {
			return err
		}
		return tx.PutMeta(metaMigrated, sum)
	})
	if err != nil {
		return fmt.Errorf("migrate %s: %w", StateFile, err)
	}
	if people > 0 || len(st.Enrolled) == 0 {
		s.log.Infof("migrated %s into the database: %d people, %d revoked serials; the file stays until \"pikcio tis confirm-migration\"", StateFile, people, len(st.Revoked))
	}
	return nil
}

// ConfirmMigration removes the state file of the TIS in dir once its store
// (db as in ServerOptions.DB) holds what the file held.
func ConfirmMigration(ctx context.Context, dir, db string) error {
	st, sum, err := readJSONState(dir)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("confirm migration: no %s in %s: %w", StateFile, dir, fs.ErrNotExist)
	}
	store, err := OpenStore(ctx, db, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	err = store.Update(ctx, func(tx Tx) error {
		done, err := tx.Meta(metaMigrated)
		if err != nil {
			return err
		}
		if done != sum {
			return fmt.Errorf("%s is not migrated (start the server once): %w", StateFile, ErrMigrated)
		}
		for owner := range st.Enrolled {
			p, err := tx.Person(owner)
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("a person of %s is missing: %w", StateFile, ErrMigrated)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("confirm migration: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, StateFile)); err != nil {
		return fmt.Errorf("confirm migration: %w", err)
	}
	return nil
}
