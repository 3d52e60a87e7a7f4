#!/bin/sh
# Exec probe of the redis container: `redis-probe.sh liveness|readiness`. Probes only
# report; the guard sidecar (redis-guard.sh) records roles, fences and demotes.
#   liveness:  the server answers a PING sent without credentials: PONG, LOADING (a big
#              AOF takes time), MASTERDOWN or NOAUTH all mean the process answers, so a
#              password (a rotation, a Secret not yet updated) can never fail liveness.
#   readiness: the server answers PONG to the operations user and, when it is a replica,
#              its link to the master is up, so a rolling update never moves on while a
#              replica is still syncing.
set -eu
SCRIPT_NAME=redis-probe
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"

case "${1:-}" in
  liveness)
    reply="$(unauthenticated_ping "$REDIS_PORT")"
    alive_reply "$reply" || { echo "PING answered '$reply'"; exit 1; }
    ;;
  readiness)
    reply="$(redis_cmd 127.0.0.1 PING || true)"
    if [ "$reply" != "PONG" ]; then
      refused="$(refused_note "$REDIS_PORT" "$reply")"
      echo "PING answered '$reply'$refused"
      exit 1
    fi
    if [ "$(info_field 127.0.0.1 replication role)" = "slave" ]; then
      link="$(info_field 127.0.0.1 replication master_link_status)"
      [ "$link" = "up" ] || { echo "replica link to master is '$link'"; exit 1; }
    fi
    ;;
  *)
    echo "usage: $0 liveness|readiness" >&2
    exit 2
    ;;
esac
