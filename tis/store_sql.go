package tis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// The SQLite driver is modernc.org/sqlite: SQLite compiled to pure Go, so
// the binary needs no C toolchain (cgo) and -race builds stay simple; it
// is maintained and passes SQLite's own tests. PostgreSQL goes through
// pgx's database/sql driver, so both share this one implementation.

// schema creates the tables; the same statements serve both databases.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS persons (
		owner TEXT PRIMARY KEY,
		binding TEXT NOT NULL,
		blocked INTEGER NOT NULL DEFAULT 0,
		issues INTEGER NOT NULL DEFAULT 0,
		enrollment BYTEA)`,
	`CREATE TABLE IF NOT EXISTS keys (
		key TEXT PRIMARY KEY,
		owner TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS certs (
		serial TEXT PRIMARY KEY,
		owner TEXT NOT NULL,
		expires BIGINT NOT NULL,
		revoked INTEGER NOT NULL DEFAULT 0)`,
	`CREATE INDEX IF NOT EXISTS certs_owner ON certs (owner)`,
	`CREATE INDEX IF NOT EXISTS certs_revoked ON certs (serial) WHERE revoked = 1`,
	`CREATE TABLE IF NOT EXISTS revlist (
		id INTEGER PRIMARY KEY,
		seq BIGINT NOT NULL,
		blob BYTEA NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS codes (
		owner TEXT PRIMARY KEY,
		hash TEXT NOT NULL,
		sent BIGINT NOT NULL,
		expires BIGINT NOT NULL,
		attempts INTEGER NOT NULL,
		used TEXT NOT NULL DEFAULT '')`,
	// The shared rate limits (PostgreSQL only; SQLite's live in memory):
	// a token bucket per key (taken: by the last take), times in Unix
	// microseconds.
	`CREATE TABLE IF NOT EXISTS limits (
		k TEXT PRIMARY KEY,
		tokens DOUBLE PRECISION NOT NULL,
		taken DOUBLE PRECISION NOT NULL,
		at BIGINT NOT NULL,
		full_at BIGINT NOT NULL)`,
	// Admission token keys (package tis/token): one private key per
	// period of span seconds, sealed under a key derived from the TIS
	// secret; and the tokens issued per enrollment and period, keyed by a
	// keyed hash of both.
	`CREATE TABLE IF NOT EXISTS token_keys (
		span BIGINT NOT NULL,
		period BIGINT NOT NULL,
		sealed BYTEA NOT NULL,
		PRIMARY KEY (span, period))`,
	`CREATE TABLE IF NOT EXISTS token_counts (
		k TEXT PRIMARY KEY,
		period BIGINT NOT NULL,
		issued INTEGER NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS token_counts_period ON token_counts (period)`,
	`CREATE TABLE IF NOT EXISTS meta (
		k TEXT PRIMARY KEY,
		v TEXT NOT NULL)`,
}

// sqlStore is a Store over database/sql, SQLite or PostgreSQL.
type sqlStore struct {
	db       *sql.DB
	postgres bool
	// stmts are the prepared statements of SQLite, by query (pgx caches
	// its own per connection): parsing a statement cost as much CPU as
	// running it. A query a transaction missed is prepared after the
	// transaction, when the one connection is free.
	stmtMu sync.RWMutex
	stmts  map[string]*sql.Stmt
}

// maxStmts bounds the prepared statements (the queries are the package's
// own, of a few shapes).
const maxStmts = 128

// stmt returns the prepared statement of query, nil if it has none.
func (s *sqlStore) stmt(query string) *sql.Stmt {
	if s.postgres {
		return nil
	}
	s.stmtMu.RLock()
	defer s.stmtMu.RUnlock()
	return s.stmts[query]
}

// prepare prepares the queries a transaction missed, outside any
// transaction. A query that fails to prepare is run unprepared again.
func (s *sqlStore) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		s.stmtMu.RLock()
		_, ok := s.stmts[q]
		n := len(s.stmts)
		s.stmtMu.RUnlock()
		if ok || n >= maxStmts {
			continue
		}
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.stmtMu.Lock()
		if _, ok := s.stmts[q]; ok || s.stmts == nil || len(s.stmts) >= maxStmts {
			st.Close()
		} else {
			s.stmts[q] = st
		}
		s.stmtMu.Unlock()
	}
}

var _ Store = (*sqlStore)(nil)

func openSQLite(ctx context.Context, path string) (*sqlStore, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite database: empty path: %w", ErrBadDatabaseURL)
	}
	// The database holds only keyed hashes, but like the rest of the TIS
	// directory it is the owner's alone (SQLite gives its -wal and -shm
	// files the database file's mode).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite database: %w", err)
	} else {
		f.Close()
	}
	// WAL lets readers go on during a write; IMMEDIATE write transactions
	// take the lock up front, so two processes on one file wait for each
	// other (busy_timeout) instead of failing half-way.
	// A page cache of 64 MiB (SQLite's default is 2 MiB) keeps the
	// upper levels of the indexes of a million people in memory, so a
	// lookup does not read them from the file again.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=cache_size(-65536)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer at a time anyway; one connection keeps it simple.
	db.SetMaxOpenConns(1)
	s := &sqlStore{db: db, stmts: make(map[string]*sql.Stmt)}
	if err := s.migrateSchema(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return s, nil
}

func openPostgres(ctx context.Context, url string) (*sqlStore, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(url), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	s := &sqlStore{db: db, postgres: true}
	if err := s.migrateSchema(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s: %w", redactURL(url), err)
	}
	return s, nil
}

// migrateSchema creates the tables if missing. On PostgreSQL an advisory
// lock keeps two servers starting at once from racing on CREATE.
func (s *sqlStore) migrateSchema(ctx context.Context) error {
	return s.Update(ctx, func(t Tx) error {
		tx := t.(*sqlTx)
		if s.postgres {
			if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7070)`); err != nil {
				return err
			}
		}
		for _, q := range schema {
			if !s.postgres {
				q = strings.ReplaceAll(q, "BYTEA", "BLOB")
			}
			if _, err := tx.tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("schema: %w", err)
			}
		}
		return nil
	})
}

// maxTxTries bounds the retries of a transaction that conflicted.
const maxTxTries = 20

func (s *sqlStore) Update(ctx context.Context, fn func(Tx) error) error {
	var err error
	for try := 0; try < maxTxTries; try++ {
		err = s.update(ctx, fn)
		if err == nil || !s.retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(try+1) * time.Millisecond):
		}
	}
	return err
}

func (s *sqlStore) update(ctx context.Context, fn func(Tx) error) error {
	sqltx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &sqlTx{ctx: ctx, tx: sqltx, store: s, postgres: s.postgres}
	if err := fn(t); err != nil {
		sqltx.Rollback()
		return err
	}
	if err := sqltx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if len(t.missed) > 0 {
		s.prepare(ctx, t.missed)
	}
	return nil
}

// retryable reports a conflict with a concurrent transaction: a unique
// key another server inserted first, a serialization failure or a
// deadlock. The transaction is run again and sees the other's result.
func (s *sqlStore) retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505", "40001", "40P01":
			return true
		}
	}
	return false
}

func (s *sqlStore) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.db.Close()
}

// sqlTx is one transaction; queries are written with ? and rebound to $n
// for PostgreSQL.
type sqlTx struct {
	ctx      context.Context
	tx       *sql.Tx
	store    *sqlStore
	postgres bool
	missed   []string // queries without a prepared statement (SQLite)
}

// prepared returns the transaction's form of query's prepared statement,
// or nil (and notes the query, to be prepared after the transaction).
func (t *sqlTx) prepared(query string) *sql.Stmt {
	if t.postgres {
		return nil
	}
	if st := t.store.stmt(query); st != nil {
		return t.tx.StmtContext(t.ctx, st)
	}
	t.missed = append(t.missed, query)
	return nil
}

func (t *sqlTx) q(query string) string {
	if !t.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (t *sqlTx) forUpdate() string {
	if t.postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (t *sqlTx) exec(query string, args ...any) (sql.Result, error) {
	if st := t.prepared(query); st != nil {
		return st.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, t.q(query), args...)
}

func (t *sqlTx) row(query string, args ...any) *sql.Row {
	if st := t.prepared(query); st != nil {
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, t.q(query), args...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *sqlTx) Person(owner string) (*person, error) {
	p := &person{Owner: owner}
	var blocked int
	err := t.row(`SELECT binding, blocked, issues, enrollment FROM persons WHERE owner = ?`+t.forUpdate(), owner).
		Scan(&p.Binding, &blocked, &p.Issues, &p.Enrollment)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read person: %w", err)
	}
	p.Blocked = blocked != 0
	return p, nil
}

func (t *sqlTx) PutPerson(p *person) error {
	_, err := t.exec(putPersonSQL, personArgs(p)...)
	if err != nil {
		return fmt.Errorf("write person: %w", err)
	}
	return nil
}

func (t *sqlTx) KeyOwner(key string) (string, error) {
	var owner string
	err := t.row(`SELECT owner FROM keys WHERE key = ?`, key).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read key: %w", err)
	}
	return owner, nil
}

// values returns n rows of m placeholders each for a multi-row INSERT.
func values(n, m int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", m), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func (t *sqlTx) PutKeys(owner string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, owner)
	}
	// A key taken by another person meanwhile is a conflict (unique key):
	// the transaction runs again and sees it.
	if _, err := t.exec(`INSERT INTO keys (key, owner) VALUES `+values(len(keys), 2), args...); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

func (t *sqlTx) PutCerts(owner string, expires time.Time, serials ...string) error {
	if len(serials) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(serials))
	for _, s := range serials {
		args = append(args, s, owner, expires.Unix())
	}
	if _, err := t.exec(`INSERT INTO certs (serial, owner, expires) VALUES `+values(len(serials), 3), args...); err != nil {
		return fmt.Errorf("write serial: %w", err)
	}
	return nil
}

// The writes of PutPerson, PutCerts, PutKeys and PutCode, for one
// statement of several parts.
const (
	putPersonSQL = `INSERT INTO persons (owner, binding, blocked, issues, enrollment) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET binding = excluded.binding, blocked = excluded.blocked,
		issues = excluded.issues, enrollment = excluded.enrollment`
	putCodeSQL = `INSERT INTO codes (owner, hash, sent, expires, attempts, used) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET hash = excluded.hash, sent = excluded.sent, expires = excluded.expires,
		attempts = excluded.attempts, used = excluded.used`
)

func personArgs(p *person) []any {
	return []any{p.Owner, p.Binding, b2i(p.Blocked), p.Issues, p.Enrollment}
}

func codeArgs(c *pendingCode) []any {
	return []any{c.Owner, c.Hash, c.Sent.Unix(), c.Expires.Unix(), c.Attempts, c.Used}
}

// Issue is one statement on PostgreSQL (data-modifying WITH parts): one
// round trip instead of four. A key or serial taken meanwhile fails the
// whole statement (unique key) and the transaction runs again.
func (t *sqlTx) Issue(p *person, code *pendingCode, expires time.Time, serials, keys []string) error {
	if !t.postgres {
		if err := t.PutCerts(p.Owner, expires, serials...); err != nil {
			return err
		}
		if err := t.PutKeys(p.Owner, keys...); err != nil {
			return err
		}
		if code != nil {
			if err := t.PutCode(code); err != nil {
				return err
			}
		}
		return t.PutPerson(p)
	}
	var parts []string
	var args []any
	if len(serials) > 0 {
		parts = append(parts, `s AS (INSERT INTO certs (serial, owner, expires) VALUES `+values(len(serials), 3)+`)`)
		for _, s := range serials {
			args = append(args, s, p.Owner, expires.Unix())
		}
	}
	if len(keys) > 0 {
		parts = append(parts, `k AS (INSERT INTO keys (key, owner) VALUES `+values(len(keys), 2)+`)`)
		for _, k := range keys {
			args = append(args, k, p.Owner)
		}
	}
	if code != nil {
		parts = append(parts, `c AS (`+putCodeSQL+`)`)
		args = append(args, codeArgs(code)...)
	}
	q := putPersonSQL
	if len(parts) > 0 {
		q = "WITH " + strings.Join(parts, ", ") + " " + q
	}
	if _, err := t.exec(q, append(args, personArgs(p)...)...); err != nil {
		return fmt.Errorf("write enrollment: %w", err)
	}
	return nil
}

// enrolleeQuery reads a person, their code (both locked) and the owners of
// two keys in one PostgreSQL statement: one round trip instead of four.
// FOR UPDATE returns the newest version of a row it waited for, as the
// separate statements do; the keys are not locked (a key inserted
// meanwhile is a unique-key conflict, and the transaction runs again).
const enrolleeQuery = `WITH p AS (SELECT binding, blocked, issues, enrollment FROM persons WHERE owner = $1 FOR UPDATE),
	c AS (SELECT hash, sent, expires, attempts, used FROM codes WHERE owner = $1 FOR UPDATE)
	SELECT p.binding, p.blocked, p.issues, p.enrollment, c.hash, c.sent, c.expires, c.attempts, c.used,
		(SELECT owner FROM keys WHERE key = $2), (SELECT owner FROM keys WHERE key = $3)
	FROM (SELECT 1) AS one LEFT JOIN p ON true LEFT JOIN c ON true`

func (t *sqlTx) Enrollee(owner string, keys []string) (*person, []string, *pendingCode, error) {
	if !t.postgres || len(keys) != 2 {
		return t.enrolleeEach(owner, keys)
	}
	var (
		binding, hash, used sql.NullString
		blocked, issues     sql.NullInt64
		sent, exp, attempts sql.NullInt64
		enr                 []byte
		k1, k2              sql.NullString
	)
	err := t.tx.QueryRowContext(t.ctx, enrolleeQuery, owner, keys[0], keys[1]).
		Scan(&binding, &blocked, &issues, &enr, &hash, &sent, &exp, &attempts, &used, &k1, &k2)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read enrollee: %w", err)
	}
	var p *person
	if binding.Valid {
		p = &person{Owner: owner, Binding: binding.String, Blocked: blocked.Int64 != 0, Issues: int(issues.Int64), Enrollment: enr}
	}
	var c *pendingCode
	if hash.Valid {
		c = &pendingCode{Owner: owner, Hash: hash.String, Sent: time.Unix(sent.Int64, 0), Expires: time.Unix(exp.Int64, 0),
			Attempts: int(attempts.Int64), Used: used.String}
	}
	return p, []string{k1.String, k2.String}, c, nil
}

// enrolleeEach is Enrollee one statement at a time (SQLite, in-process).
func (t *sqlTx) enrolleeEach(owner string, keys []string) (*person, []string, *pendingCode, error) {
	p, err := t.Person(owner)
	if err != nil {
		return nil, nil, nil, err
	}
	owners := make([]string, len(keys))
	for i, k := range keys {
		if owners[i], err = t.KeyOwner(k); err != nil {
			return nil, nil, nil, err
		}
	}
	c, err := t.Code(owner)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, owners, c, nil
}

func (t *sqlTx) CertOwner(serial string) (string, bool, error) {
	var owner string
	var revoked int
	err := t.row(`SELECT owner, revoked FROM certs WHERE serial = ?`, serial).Scan(&owner, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read serial: %w", err)
	}
	return owner, revoked != 0, nil
}

func (t *sqlTx) strings(query string, args ...any) ([]string, error) {
	var rows *sql.Rows
	var err error
	if st := t.prepared(query); st != nil {
		rows, err = st.QueryContext(t.ctx, args...)
	} else {
		rows, err = t.tx.QueryContext(t.ctx, t.q(query), args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t *sqlTx) LiveSerials(owner string) ([]string, error) {
	out, err := t.strings(`SELECT serial FROM certs WHERE owner = ? AND revoked = 0 ORDER BY serial`, owner)
	if err != nil {
		return nil, fmt.Errorf("read serials: %w", err)
	}
	return out, nil
}

func (t *sqlTx) Revoke(serials []string) (int, error) {
	n := 0
	for _, s := range serials {
		r, err := t.exec(`UPDATE certs SET revoked = 1 WHERE serial = ? AND revoked = 0`, s)
		if err != nil {
			return 0, fmt.Errorf("revoke: %w", err)
		}
		k, err := r.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("revoke: %w", err)
		}
		n += int(k)
	}
	return n, nil
}

func (t *sqlTx) Revoked(now time.Time) ([]string, error) {
	out, err := t.strings(`SELECT serial FROM certs WHERE revoked = 1 AND expires > ? ORDER BY serial`, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("read revoked serials: %w", err)
	}
	return out, nil
}

// The pages of the revocation list are the rows of revlist, page i at id
// i+1; row 1 is the one locked and compared.

func (t *sqlTx) RevocationSeq() (uint64, error) {
	var seq int64
	err := t.row(`SELECT seq FROM revlist WHERE id = 1` + t.forUpdate()).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read revocation list: %w", err)
	}
	return uint64(seq), nil
}

func (t *sqlTx) RevocationPages() ([][]byte, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT blob FROM revlist ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read revocation list: %w", err)
	}
	defer rows.Close()
	var pages [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read revocation list: %w", err)
		}
		pages = append(pages, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revocation list: %w", err)
	}
	return pages, nil
}

func (t *sqlTx) PutRevocationList(seq uint64, pages [][]byte) error {
	if len(pages) == 0 {
		return fmt.Errorf("revocation list %d of no page: %w", seq, ErrMalformed)
	}
	r, err := t.exec(`UPDATE revlist SET seq = ?, blob = ? WHERE id = 1 AND seq < ?`, int64(seq), pages[0], int64(seq))
	if err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return fmt.Errorf("write revocation list: %w", err)
	} else if n == 0 {
		// No list yet (a list of this sequence or later makes the insert fail).
		if _, err := t.exec(`INSERT INTO revlist (id, seq, blob) VALUES (1, ?, ?)`, int64(seq), pages[0]); err != nil {
			return fmt.Errorf("write revocation list %d: %w", seq, err)
		}
	}
	for i, b := range pages[1:] {
		if _, err := t.exec(`INSERT INTO revlist (id, seq, blob) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, blob = excluded.blob`, i+2, int64(seq), b); err != nil {
			return fmt.Errorf("write revocation list %d page %d: %w", seq, i+1, err)
		}
	}
	if _, err := t.exec(`DELETE FROM revlist WHERE id > ?`, len(pages)); err != nil {
		return fmt.Errorf("write revocation list %d: %w", seq, err)
	}
	return nil
}

func (t *sqlTx) PutRevocationDelta(seq uint64, index int, delta []byte) error {
	if index < 1 {
		return fmt.Errorf("revocation delta %d as page %d: %w", seq, index, ErrMalformed)
	}
	r, err := t.exec(`UPDATE revlist SET seq = ? WHERE id = 1 AND seq < ?`, int64(seq), int64(seq))
	if err != nil {
		return fmt.Errorf("write revocation delta %d: %w", seq, err)
	}
	if n, err := r.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("write revocation delta %d: not after the stored list (%v): %w", seq, err, ErrMalformed)
	}
	if _, err := t.exec(`INSERT INTO revlist (id, seq, blob) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, blob = excluded.blob`, index+1, int64(seq), delta); err != nil {
		return fmt.Errorf("write revocation delta %d: %w", seq, err)
	}
	return nil
}

func (t *sqlTx) Code(owner string) (*pendingCode, error) {
	c := &pendingCode{Owner: owner}
	var sent, expires int64
	err := t.row(`SELECT hash, sent, expires, attempts, used FROM codes WHERE owner = ?`+t.forUpdate(), owner).
		Scan(&c.Hash, &sent, &expires, &c.Attempts, &c.Used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read code: %w", err)
	}
	c.Sent, c.Expires = time.Unix(sent, 0), time.Unix(expires, 0)
	return c, nil
}

func (t *sqlTx) PutCode(c *pendingCode) error {
	_, err := t.exec(putCodeSQL, codeArgs(c)...)
	if err != nil {
		return fmt.Errorf("write code: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteCode(owner string) error {
	if _, err := t.exec(`DELETE FROM codes WHERE owner = ?`, owner); err != nil {
		return fmt.Errorf("delete code: %w", err)
	}
	return nil
}

func (t *sqlTx) Meta(key string) (string, error) {
	var v string
	err := t.row(`SELECT v FROM meta WHERE k = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return v, nil
}

func (t *sqlTx) PutMeta(key, value string) error {
	if _, err := t.exec(`INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, key, value); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func (t *sqlTx) TokenKey(span, period int64) ([]byte, error) {
	var sealed []byte
	err := t.row(`SELECT sealed FROM token_keys WHERE span = ? AND period = ?`, span, period).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	return sealed, nil
}

func (t *sqlTx) PutTokenKey(span, period int64, sealed []byte) (bool, error) {
	r, err := t.exec(`INSERT INTO token_keys (span, period, sealed) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, span, period, sealed)
	if err != nil {
		return false, fmt.Errorf("write token key: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("write token key: %w", err)
	}
	return n == 1, nil
}

func (t *sqlTx) DeleteTokenKeys(span, before int64) error {
	if _, err := t.exec(`DELETE FROM token_keys WHERE span = ? AND period < ?`, span, before); err != nil {
		return fmt.Errorf("delete token keys: %w", err)
	}
	return nil
}

func (t *sqlTx) TokenCount(k string) (int, bool, error) {
	var n int
	err := t.row(`SELECT issued FROM token_counts WHERE k = ?`+t.forUpdate(), k).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read token count: %w", err)
	}
	return n, true, nil
}

func (t *sqlTx) PutTokenCount(k string, period int64, issued int, exists bool) error {
	var err error
	if exists {
		_, err = t.exec(`UPDATE token_counts SET issued = ? WHERE k = ?`, issued, k)
	} else {
		// A row another server inserted meanwhile is a unique-key
		// conflict: the transaction runs again and reads it (an upsert
		// would overwrite its count).
		_, err = t.exec(`INSERT INTO token_counts (k, period, issued) VALUES (?, ?, ?)`, k, period, issued)
	}
	if err != nil {
		return fmt.Errorf("write token count: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteTokenCounts(before int64) error {
	if _, err := t.exec(`DELETE FROM token_counts WHERE period < ?`, before); err != nil {
		return fmt.Errorf("delete token counts: %w", err)
	}
	return nil
}

// tokenTake is up to n tokens to take from the bucket of key (rate a
// second, at most burst); idle is how long the bucket takes to fill up,
// after which its row may be deleted.
type tokenTake struct {
	key   string
	n     int
	rate  float64
	burst int
	idle  time.Duration
}

// takeTokens takes tokens from each bucket in order at now, in one
// statement (one round trip, atomic: two servers cannot both take the
// last token), stopping at the first that has none: the later ones are
// not taken from. It returns how many tokens it took of each (up to its
// n; 0 from the first refused and those after). A missing bucket is
// created full. Only for PostgreSQL.
func (s *sqlStore) takeTokens(ctx context.Context, now time.Time, takes []tokenTake) ([]int, error) {
	var b strings.Builder
	args := []any{now.UnixMicro()}
	b.WriteString("WITH ")
	for i, t := range takes {
		n := len(args)
		args = append(args, t.key, float64(t.n), t.rate, float64(t.burst), t.idle.Microseconds())
		k, want, r, burst, idle := n+1, n+2, n+3, n+4, n+5
		refill := fmt.Sprintf(`LEAST($%d::float8, l.tokens + GREATEST(0, $1::bigint - l.at) * $%d::float8 / 1e6)`, burst, r)
		got := fmt.Sprintf(`LEAST($%d::float8, floor(%s))`, want, refill)
		// Each take only if the one before it took.
		cond := ""
		if i > 0 {
			cond = fmt.Sprintf(" WHERE EXISTS (SELECT 1 FROM t%d)", i-1)
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `t%d AS (INSERT INTO limits AS l (k, tokens, taken, at, full_at)
			SELECT $%d, $%d::float8 - LEAST($%d::float8, $%d::float8), LEAST($%d::float8, $%d::float8), $1::bigint, $1::bigint + $%d::bigint%s
			ON CONFLICT (k) DO UPDATE SET tokens = %s - %s, taken = %s, at = GREATEST(l.at, $1::bigint),
				full_at = GREATEST(l.at, $1::bigint) + $%d::bigint
			WHERE %s >= 1 RETURNING taken)`, i, k, burst, want, burst, want, burst, idle, cond, refill, got, got, idle, refill)
	}
	b.WriteString(" SELECT ")
	for i := range takes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(SELECT taken FROM t%d)", i)
	}
	got := make([]sql.NullFloat64, len(takes))
	dest := make([]any, len(takes))
	for i := range got {
		dest[i] = &got[i]
	}
	if err := s.db.QueryRowContext(ctx, b.String(), args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	taken := make([]int, len(takes))
	for i, g := range got {
		taken[i] = int(g.Float64)
	}
	return taken, nil
}

// limitExists says whether the bucket of key has a row.
func (s *sqlStore) limitExists(ctx context.Context, key string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM limits WHERE k = $1`, key).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rate limit: %w", err)
	}
	return true, nil
}

// sweepLimits deletes the buckets under prefix that are full again at now
// and returns how many remain.
func (s *sqlStore) sweepLimits(ctx context.Context, prefix string, now time.Time) (int, error) {
	// The keys from prefix up to (not including) prefix with its last
	// byte incremented: an index range in any collation.
	end := prefix[:len(prefix)-1] + string(rune(prefix[len(prefix)-1]+1))
	if _, err := s.db.ExecContext(ctx, `DELETE FROM limits WHERE k >= $1 AND k < $2 AND full_at < $3`, prefix, end, now.UnixMicro()); err != nil {
		return 0, fmt.Errorf("sweep rate limits: %w", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM limits WHERE k >= $1 AND k < $2`, prefix, end).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rate limits: %w", err)
	}
	return n, nil
}
