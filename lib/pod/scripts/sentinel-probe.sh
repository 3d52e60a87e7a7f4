#!/bin/sh
# Exec probe of the sentinel container: `sentinel-probe.sh liveness|readiness`.
#   liveness:  Sentinel answers PING.
#   readiness: Sentinel knows the master, so a client sent here gets an answer. It does
#              not require a quorum: with two Sentinels down the last one must still
#              tell clients where the master is.
set -eu
SCRIPT_NAME=sentinel-probe
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"

case "${1:-}" in
  liveness)
    reply="$(sentinel_cmd 127.0.0.1 PING || true)"
    [ "$reply" = "PONG" ] || { echo "PING answered '$reply'"; exit 1; }
    ;;
  readiness)
    master="$(sentinel_cmd 127.0.0.1 SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_NAME" | head -n 1)"
    [ -n "$master" ] || { echo "Sentinel does not know master $MASTER_NAME"; exit 1; }
    ;;
  *)
    echo "usage: $0 liveness|readiness" >&2
    exit 2
    ;;
esac
