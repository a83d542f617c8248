package tis

import (
	"testing"

	"github.com/pikcio/pikcio/internal/pgtest"
)

// startPostgres runs a PostgreSQL server of the test's own (pgtest.Start).
func startPostgres(t testing.TB) string { return pgtest.Start(t) }
