#!/bin/sh
# Enrollment benchmark: two real "pikcio tis serve" processes (built with
# go build into a temporary directory) on one PostgreSQL of the
# benchmark's own (internal/pgtest: Debian's postgresql binaries, data in a
# temporary directory, loopback only, fsync=off), enrolled into through
# the real HTTP path (the request that mails a code, then the one with the
# code) by 16 clients at once, alternating between the two servers. At
# each N (people enrolled before, pre-filled in bulk) it prints
# enrollments/s, the median and 99th percentile time of one enrollment,
# and the CPU time per enrollment of the servers, of PostgreSQL and of the
# clients.
#
#   bench/tis/run.sh                   # N = 10k, 100k, 1M; 2000 enrollments each
#   PIKCIO_BENCH_N=10000,100000 bench/tis/run.sh
#   PIKCIO_BENCH_M=5000 bench/tis/run.sh
#   bench/tis/run.sh statements        # also PostgreSQL's costliest statements
set -eu
cd "$(dirname "$0")/../.."
if [ "${1:-}" = statements ]; then
	export PIKCIO_PGTEST_OPTS="-c shared_preload_libraries=pg_stat_statements" PIKCIO_BENCH_PGSTATS=1
fi
go test -count=1 -v -timeout 60m -run '^$' -bench . ./bench/tis |
	grep -E '^Benchmark[^ ]*-|calls'
