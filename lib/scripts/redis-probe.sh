#!/bin/sh
# Exec probe of the redis container: `redis-probe.sh liveness|readiness`.
#   liveness:  the server answers PING (LOADING counts as alive: a big AOF takes time).
#   readiness: the server answers PONG and, when it is a replica, its link to the master
#              is up, so a rolling update never moves on while a replica is still syncing.
# Readiness also records the role this pod is in on its data volume: when every
# Sentinel is gone at once, that record is how redis-start.sh picks the right master.
# And it guards against a second master: a master that the Sentinels agree (all that
# answer, at least a quorum, no failover running) is not the master, while the one they
# name answers as master, becomes its replica at once instead of taking writes until
# Sentinel gets round to converting it.
#
# Extra environment: GOVERNING_SERVICE, SENTINEL_QUORUM.
set -eu
SCRIPT_NAME=redis-probe
# shellcheck source=lib/scripts/common.sh
. "$(dirname "$0")/common.sh"
to_container_log

record_role() {
  _role="$(redis_cmd 127.0.0.1 ROLE | head -n 2)"
  case "$_role" in
    master*) _record="master" ;;
    slave*) _record="replica $(echo "$_role" | sed -n 2p)" ;;
    *) return 0 ;;
  esac
  if [ "$(cat "$ROLE_FILE" 2>/dev/null || true)" != "$_record" ]; then
    echo "$_record" > "$ROLE_FILE.tmp" && mv "$ROLE_FILE.tmp" "$ROLE_FILE"
  fi
}

demote_if_superseded() {
  [ "$(redis_role 127.0.0.1)" = "master" ] || return 0
  _view="$(settled_sentinel_view)"
  [ -n "$_view" ] || return 0
  # shellcheck disable=SC2086
  set -- $_view
  _me="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"
  [ "$2" != "$_me" ] || return 0
  [ "$(redis_role "$2")" = "master" ] || return 0
  log "this server is a master but the Sentinels name $2 (epoch $1), which answers as master; becoming its replica"
  redis_cmd 127.0.0.1 REPLICAOF "$2" "$3" >/dev/null || true
  redis_cmd 127.0.0.1 CLIENT KILL TYPE normal >/dev/null || true
}

case "${1:-}" in
  liveness)
    reply="$(redis_cmd 127.0.0.1 PING || true)"
    case "$reply" in
      PONG|LOADING*|MASTERDOWN*) exit 0 ;;
      *) echo "PING answered '$reply'"; exit 1 ;;
    esac
    ;;
  readiness)
    reply="$(redis_cmd 127.0.0.1 PING || true)"
    [ "$reply" = "PONG" ] || { echo "PING answered '$reply'"; exit 1; }
    demote_if_superseded
    record_role
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
