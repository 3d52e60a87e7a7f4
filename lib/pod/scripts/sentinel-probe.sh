#!/bin/sh
# Exec probe of the sentinel container: `sentinel-probe.sh liveness|readiness`.
#   liveness:  Sentinel answers a PING sent without credentials (PONG or NOAUTH: the
#              process answers; a password never fails liveness).
#   readiness: Sentinel tells the operations user the master, so a client sent here
#              gets an answer. It does
#              not require a quorum: with two Sentinels down the last one must still
#              tell clients where the master is.
set -eu
SCRIPT_NAME=sentinel-probe
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"

case "${1:-}" in
  liveness)
    reply="$(unauthenticated_ping "$SENTINEL_PORT")"
    alive_reply "$reply" || { echo "PING answered '$reply'"; exit 1; }
    ;;
  readiness)
    master="$(sentinel_cmd 127.0.0.1 SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_NAME" | head -n 1)"
    if [ -z "$master" ]; then
      refused="$(refused_note "$SENTINEL_PORT" "")"
      echo "Sentinel does not know master $MASTER_NAME$refused"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 liveness|readiness" >&2
    exit 2
    ;;
esac
