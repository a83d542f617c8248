#!/bin/sh
# Enrollment benchmark, through the real HTTP path (the request that
# mails a code, then the one with the code), 16 clients at once, into real
# "pikcio tis serve" processes (built with go build into a temporary
# directory):
#   - BenchmarkTwoProcesses: two processes on one PostgreSQL of the
#     benchmark's own (internal/pgtest: Debian's postgresql binaries, data
#     in a temporary directory, loopback only, fsync=off), the requests
#     alternating between them;
#   - BenchmarkSQLite: one process on its default database (SQLite, tis.db
#     in its directory).
# At each N (people enrolled before, pre-filled in bulk) it prints
# enrollments/s, the median and 99th percentile time of one enrollment,
# and the CPU time per enrollment of the servers, of PostgreSQL and of the
# clients.
#
#   bench/tis/run.sh                   # both; N = 10k, 100k, 1M; 2000 enrollments each
#   bench/tis/run.sh sqlite            # SQLite only (postgres: PostgreSQL only)
#   PIKCIO_BENCH_N=10000,100000 bench/tis/run.sh
#   PIKCIO_BENCH_M=5000 bench/tis/run.sh
#   bench/tis/run.sh statements        # PostgreSQL, and its costliest statements
set -eu
cd "$(dirname "$0")/../.."
bench=.
case "${1:-}" in
sqlite) bench=SQLite ;;
postgres) bench=TwoProcesses ;;
statements)
	bench=TwoProcesses
	export PIKCIO_PGTEST_OPTS="-c shared_preload_libraries=pg_stat_statements" PIKCIO_BENCH_PGSTATS=1
	;;
esac
go test -count=1 -v -timeout 90m -run '^$' -bench "$bench" ./bench/tis |
	grep -E '^Benchmark[^ ]*-|calls'
