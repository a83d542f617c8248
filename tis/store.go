package tis

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// DBFile is the SQLite database of a TIS, in its directory, used when no
// database URL is given.
const DBFile = "tis.db"

// Store is where a Server keeps its state: people, keys, serials,
// revocations, pending codes, the signed revocation list, and the
// admission token keys and counts. It holds no
// name and no e-mail, only keyed hashes (hex). Every change is one
// transaction; several Servers (processes) may share one PostgreSQL Store.
type Store interface {
	// Update runs fn in one transaction and commits it when fn returns nil.
	// fn may run more than once (after a conflict with another server), so
	// it must not act outside tx before Update returns.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Close closes the database.
	Close() error
}

// Tx is one transaction of a Store. Reads of a person and of the
// revocation list lock what they read until the end of the transaction,
// where the database can (PostgreSQL's FOR UPDATE; SQLite locks the whole
// database for a write transaction).
type Tx interface {
	// Person returns the person whose e-mail hash is owner, or nil.
	Person(owner string) (*person, error)
	// PutPerson inserts or replaces a person.
	PutPerson(p *person) error
	// KeyOwner returns the e-mail hash a public key hash is enrolled by, or "".
	KeyOwner(key string) (string, error)
	// PutKeys records that keys belong to owner.
	PutKeys(owner string, keys ...string) error
	// PutCerts records issued serials (hex) of owner, expiring at expires.
	PutCerts(owner string, expires time.Time, serials ...string) error
	// Issue writes an enrollment at once: the person p, owner of the new
	// serials (expiring at expires) and keys, and code unless nil (PutPerson,
	// PutCerts, PutKeys, PutCode).
	Issue(p *person, code *pendingCode, expires time.Time, serials, keys []string) error
	// Enrollee reads at once what an enrollment request needs: the person
	// of owner and their pending code, locked as Person and Code lock them
	// (nil when missing), and the owner of each of keys ("" if none).
	Enrollee(owner string, keys []string) (*person, []string, *pendingCode, error)
	// CertOwner returns the owner of a serial and whether it is revoked;
	// "" if it was never issued.
	CertOwner(serial string) (owner string, revoked bool, err error)
	// LiveSerials returns owner's serials that are not revoked.
	LiveSerials(owner string) ([]string, error)
	// Revoke marks serials revoked and says how many were not already.
	Revoke(serials []string) (int, error)
	// Revoked returns the revoked serials not expired at now, ascending.
	Revoked(now time.Time) ([]string, error)
	// RevocationSeq returns the sequence of the current signed list (0
	// before the first), locking the list.
	RevocationSeq() (uint64, error)
	// RevocationPages returns the encoded pages of the current list, in
	// order (nil before the first).
	RevocationPages() ([][]byte, error)
	// PutRevocationList stores the pages of a newly signed list; seq must
	// be above the current sequence.
	PutRevocationList(seq uint64, pages [][]byte) error
	// PutRevocationDelta stores the delta of a list signed at seq (above
	// the current sequence) as page index, the pages before it unchanged.
	PutRevocationDelta(seq uint64, index int, delta []byte) error
	// Code returns the pending code of owner, or nil.
	Code(owner string) (*pendingCode, error)
	// PutCode inserts or replaces owner's pending code.
	PutCode(c *pendingCode) error
	// DeleteCode removes owner's pending code.
	DeleteCode(owner string) error
	// TokenKey returns the sealed admission token key of period (of span
	// seconds), nil if there is none.
	TokenKey(span, period int64) ([]byte, error)
	// PutTokenKey stores a sealed token key unless the period has one,
	// and says whether it did.
	PutTokenKey(span, period int64, sealed []byte) (bool, error)
	// DeleteTokenKeys removes the token keys of span before period.
	DeleteTokenKeys(span, before int64) error
	// TokenCount returns the tokens issued under count key k, locked,
	// and whether k has a row.
	TokenCount(k string) (issued int, exists bool, err error)
	// PutTokenCount writes the count of k (of period), inserting it
	// unless exists.
	PutTokenCount(k string, period int64, issued int, exists bool) error
	// DeleteTokenCounts removes the counts of periods before before.
	DeleteTokenCounts(before int64) error
	// Meta and PutMeta read and write a setting ("" if unset).
	Meta(key string) (string, error)
	PutMeta(key, value string) error
}

// person is one enrolled person.
type person struct {
	// Owner is the keyed hash of the e-mail.
	Owner string
	// Binding is the keyed hash of the properties and both public keys of
	// the current enrollment.
	Binding string
	// Blocked is set when the operator revoked one of the person's
	// certificates: the TIS does not issue to them again.
	Blocked bool
	// Issues counts the certificate pairs issued to the person.
	Issues int
	// Enrollment is the encoded current Enrollment, answered again to a
	// retry of the request that made it.
	Enrollment []byte
}

// pendingCode is a one-time code mailed to an e-mail address, kept as a
// keyed hash.
type pendingCode struct {
	Owner    string
	Hash     string
	Sent     time.Time
	Expires  time.Time
	Attempts int
	// Used is the binding the code enrolled, "" while unused: a retry of
	// that enrollment gets it again; any other use is refused.
	Used string
}

// OpenStore opens the store of a TIS: url "" is the SQLite database DBFile
// in dir; "sqlite:PATH" (or "file:PATH") another SQLite file;
// "postgres://..." or "postgresql://..." a PostgreSQL database.
func OpenStore(ctx context.Context, url, dir string) (Store, error) {
	switch {
	case url == "":
		return openSQLite(ctx, filepath.Join(dir, DBFile))
	case strings.HasPrefix(url, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(url, "sqlite:"))
	case strings.HasPrefix(url, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(url, "file:"))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url)
	}
	return nil, fmt.Errorf("database %q: %w", redactURL(url), ErrBadDatabaseURL)
}

// ErrBadDatabaseURL reports a --db URL of no known kind.
var ErrBadDatabaseURL = errors.New("want sqlite:PATH or postgres://")

// redactURL drops a password from a database URL for messages.
func redactURL(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	cred := u[scheme+3 : at]
	if i := strings.IndexByte(cred, ':'); i >= 0 {
		return u[:scheme+3] + cred[:i] + ":xxx" + u[at:]
	}
	return u
}
