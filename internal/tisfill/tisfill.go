// Package tisfill writes the SQL that pre-fills a TIS database (package
// tis's schema) with made-up enrolled people in bulk, for the enrollment
// benchmarks: a person, two keys and two serials each, as if they had
// enrolled before the measured ones. On SQLite the statements share a
// temporary table: run them on one connection (or in one transaction).
package tisfill

import "fmt"

// Queries returns the statements that add the people numbered from to
// to (inclusive), their serials expiring at expires (Unix seconds), on
// PostgreSQL or else SQLite.
func Queries(postgres bool, from, to int, expires int64) []string {
	if postgres {
		h := func(tag string) string { return fmt.Sprintf("md5('%s'||i)||md5('%s-'||i)", tag, tag) }
		series := fmt.Sprintf(" FROM generate_series(%d, %d) AS i", from, to)
		return []string{
			"INSERT INTO persons (owner, binding, blocked, issues) SELECT " + h("o") + ", " + h("b") + ", 0, 1" + series,
			"INSERT INTO keys (key, owner) SELECT " + h("k1") + ", " + h("o") + series,
			"INSERT INTO keys (key, owner) SELECT " + h("k2") + ", " + h("o") + series,
			fmt.Sprintf("INSERT INTO certs (serial, owner, expires) SELECT left(%s, 32), %s, %d", h("s1"), h("o"), expires) + series,
			fmt.Sprintf("INSERT INTO certs (serial, owner, expires) SELECT left(%s, 32), %s, %d", h("s2"), h("o"), expires) + series,
		}
	}
	// Random hex of the hashes' lengths (SQLite has no md5).
	series := fmt.Sprintf("WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i+1 FROM c WHERE i < %d) ", from, to)
	h := "lower(hex(randomblob(32)))"
	return []string{
		"CREATE TEMP TABLE fill AS " + series + "SELECT " + h + " AS o FROM c",
		"INSERT INTO persons (owner, binding, blocked, issues) SELECT o, " + h + ", 0, 1 FROM fill",
		"INSERT INTO keys (key, owner) SELECT " + h + ", o FROM fill",
		"INSERT INTO keys (key, owner) SELECT " + h + ", o FROM fill",
		fmt.Sprintf("INSERT INTO certs (serial, owner, expires) SELECT lower(hex(randomblob(16))), o, %d FROM fill", expires),
		fmt.Sprintf("INSERT INTO certs (serial, owner, expires) SELECT lower(hex(randomblob(16))), o, %d FROM fill", expires),
		"DROP TABLE fill",
	}
}
