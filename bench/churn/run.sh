#!/bin/sh
# Fault benchmark: relay processes killed (SIGKILL) and restarted on their
# data directories while a client fetches 64 KiB through its SOCKS5 proxy
# every 200 ms (integration.TestChurn, which the test suite runs shorter).
# It prints the success rate per window, the slowest fetch, the time to
# recover after each kill, how soon the client knows every relay again after
# the last restart, and the client's file descriptors and threads before
# and after.
#
#   bench/churn/run.sh            # issue 15's scenario: 8 relays, one killed
#                                 # every 10 s for 3 minutes
#   bench/churn/run.sh cycles     # 100 kill/restart cycles, one every 2 s
#
# Environment: PIKCIO_CHURN_RELAYS, PIKCIO_CHURN_DURATION, PIKCIO_CHURN_EVERY
# override the scenario's values.
set -eu
cd "$(dirname "$0")/../.."
case "${1:-churn}" in
churn)
	: "${PIKCIO_CHURN_RELAYS:=8}" "${PIKCIO_CHURN_DURATION:=3m}" "${PIKCIO_CHURN_EVERY:=10s}" ;;
cycles)
	: "${PIKCIO_CHURN_RELAYS:=8}" "${PIKCIO_CHURN_DURATION:=200s}" "${PIKCIO_CHURN_EVERY:=2s}" ;;
*)
	echo "usage: $0 [churn|cycles]" >&2
	exit 2 ;;
esac
export PIKCIO_CHURN_RELAYS PIKCIO_CHURN_DURATION PIKCIO_CHURN_EVERY
# The report: the "churn:" line and the indented lines after it.
go test -count=1 -v -timeout 30m -run '^TestChurn$' ./integration |
	awk '/^churn:/ { on = 1; print; next } on && /^  [^ ]/ { print; next } { on = 0 }'
