#!/bin/sh
# The guard: a sidecar beside every Redis server, the one place that changes Redis state
# at run time (probes only report). Every FENCE_CHECK_INTERVAL seconds it:
#   - records this pod's role and data (keys, replication ID, offset) on the volume, which
#     is what redis-start.sh decides from after a restart;
#   - on a master, fences: when fewer than a majority of the Sentinels back this master
#     and not every replica is healthy, for FENCE_AFTER_ROUNDS checks in a row, writes are
#     refused (min-replicas-to-write above the number of replicas, so clients get
#     NOREPLICAS at once) until the Sentinels back it again or every replica is back. The
#     majority on the other side can only promote a replica after down-after-milliseconds;
#     the fence is up well before that, so the writes a partitioned master can still take
#     and later lose are those of the detection window only (fence_verdict has the rule);
#   - on a replica, puts back a replica-priority that an interrupted handover left changed;
#   - keeps the passwords in step with the auth Secret during a rotation (auth-sync.sh);
#   - on a master the Sentinels agree they replaced (a quorum, no failover running) while
#     the new master answers as master: becomes its replica and drops client connections.
# The decisions (fence_verdict, decide_demote, decide_priority_restore) are in
# redis-decide.sh; this loop acts on them.
#
# Extra environment: GOVERNING_SERVICE, REDIS_TEMPLATE, FENCE_CHECK_INTERVAL,
# PRIORITY_RESTORE_AFTER_SECONDS (and those of common.sh, redis-decide.sh and auth-sync.sh).
set -eu
SCRIPT_NAME=redis-guard
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=lib/pod/scripts/redis-decide.sh
. "$(dirname "$0")/redis-decide.sh"
# shellcheck source=lib/pod/scripts/auth-sync.sh
. "$(dirname "$0")/auth-sync.sh"
AUTH_SERVER=redis

ME="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"
REPLICAS_EXPECTED=$(( $(echo "$REDIS_NODES" | wc -w) - 1 ))
MIN_REPLICAS_CONFIGURED="$(awk '$1 == "min-replicas-to-write" { print $2 }' "$REDIS_TEMPLATE")"
MIN_REPLICAS_CONFIGURED="${MIN_REPLICAS_CONFIGURED:-0}"
FENCED_VALUE=$(( REPLICAS_EXPECTED + 1 ))

# record INFO: the state record (read by redis-start.sh) and the role record (also kept
# by the preStop hook), each rewritten only when it changes.
record() {
  echo "$1" | tr -d '\r' | awk -F: '
    $1 == "role" { role = $2 }
    $1 == "master_host" { mh = $2 }
    $1 == "master_replid" { r1 = $2 }
    $1 == "master_repl_offset" { off = $2 }
    /^db[0-9]+:keys=/ { split($2, a, /[=,]/); keys += a[2] }
    END { print "role", role; print "master", (mh == "" ? "-" : mh); print "keys", keys + 0; print "replid", r1; print "offset", off + 0 }' \
    > "$STATE_FILE.new"
  replace_if_changed "$STATE_FILE"
  # A record of no keys is only believed at start while no data file is newer than it
  # (own_keys): keep it fresh, so the first write after it makes it stale.
  if [ "$(state_field keys)" = 0 ]; then touch "$STATE_FILE"; fi
  if [ "$(state_field role)" = "master" ]; then echo "master"; else echo "replica $(state_field master)"; fi > "$ROLE_FILE.new"
  replace_if_changed "$ROLE_FILE"
}

replace_if_changed() {
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi
}

# demote_to HOST PORT REASON: become HOST's replica and drop clients so they ask Sentinel again.
demote_to() {
  log "demoting: this server is a master but $3; becoming its replica"
  redis_cmd 127.0.0.1 REPLICAOF "$1" "$2" >/dev/null || true
  redis_cmd 127.0.0.1 CLIENT KILL TYPE normal >/dev/null || true
}

# restore_priority_after_handover: a master's preStop gives the replica it hands over to
# replica-priority 1 (so Sentinel promotes that one) and restores it afterwards. If the
# hook died in between, the priority would keep winning later failovers over replicas
# with more data; put it back once it has outlived any handover.
PRIORITY_CONFIGURED="$(awk '$1 == "replica-priority" { print $2 }' "$REDIS_TEMPLATE")"
PRIORITY_CONFIGURED="${PRIORITY_CONFIGURED:-100}"
PRIORITY_CHANGED_AT=""
restore_priority_after_handover() {
  _priority="$(redis_cmd 127.0.0.1 CONFIG GET replica-priority | sed -n 2p)"
  if [ -z "$_priority" ] || [ "$_priority" = "$PRIORITY_CONFIGURED" ]; then
    PRIORITY_CHANGED_AT=""
    return 0
  fi
  [ -n "$PRIORITY_CHANGED_AT" ] || PRIORITY_CHANGED_AT="$(date +%s)"
  _verdict="$(decide_priority_restore "$_priority" "$PRIORITY_CONFIGURED" $(( $(date +%s) - PRIORITY_CHANGED_AT )))"
  case "$_verdict" in
    restore\ *)
      redis_cmd 127.0.0.1 CONFIG SET replica-priority "$PRIORITY_CONFIGURED" >/dev/null &&
        log "restoring replica-priority $PRIORITY_CONFIGURED: ${_verdict#restore }"
      PRIORITY_CHANGED_AT=""
      ;;
  esac
}

set_min_replicas() {
  redis_cmd 127.0.0.1 CONFIG SET min-replicas-to-write "$1" >/dev/null
}

# As PID 1 a shell ignores SIGTERM; exit at once so pod deletion does not wait out the grace period.
trap 'exit 0' TERM INT

log "guarding $ME: fencing after $FENCE_AFTER_ROUNDS failed checks every ${FENCE_CHECK_INTERVAL}s (need $(sentinel_majority) of $SENTINEL_COUNT Sentinels or all $REPLICAS_EXPECTED replicas)"
# A guard that restarts finds the server as it left it: fenced or not.
FENCED=0
BAD_ROUNDS=0
while :; do
  # Password rotation: the ACL passwords, masterauth and the status file (auth-sync.sh).
  auth_sync_if_due sync_masterauth replication
  INFO="$(redis_cmd 127.0.0.1 INFO || true)"
  ROLE="$(echo "$INFO" | tr -d '\r' | awk -F: '$1 == "role" { print $2 }')"
  LOADING="$(echo "$INFO" | tr -d '\r' | awk -F: '$1 == "loading" { print $2 }')"
  if [ -n "$ROLE" ] && [ "$LOADING" = 0 ]; then
    record "$INFO"
    CURRENT="$(redis_cmd 127.0.0.1 CONFIG GET min-replicas-to-write | sed -n 2p)"
    if [ "$ROLE" = "master" ]; then
      [ "$CURRENT" = "$FENCED_VALUE" ] && [ "$FENCED_VALUE" != "$MIN_REPLICAS_CONFIGURED" ] && FENCED=1
      PROBES="$(probe_peers "$INFO")"
      read -r DEMOTE NEW_HOST NEW_PORT REASON <<EOF
$(echo "$PROBES" | decide_demote "$ME")
EOF
      if [ "$DEMOTE" = "demote" ]; then
        demote_to "$NEW_HOST" "$NEW_PORT" "$REASON"
        sleep "$FENCE_CHECK_INTERVAL"
        continue
      fi
      BACKING="$(echo "$PROBES" | sentinels_backing "$ME")"
      HEALTHY="$(echo "$PROBES" | replicas_healthy)"
      if fence_check_fails "$BACKING" "$HEALTHY" "$REPLICAS_EXPECTED"; then
        BAD_ROUNDS=$(( BAD_ROUNDS + 1 ))
      else
        BAD_ROUNDS=0
      fi
      VERDICT="$(fence_verdict "$FENCED" "$BACKING" "$HEALTHY" "$REPLICAS_EXPECTED" "$BAD_ROUNDS")"
      case "$VERDICT" in
        keep*"checks in a row")
          # A first failed check: said once, so a fence (or a near miss) can be traced.
          [ "$BAD_ROUNDS" = 1 ] && log "check failed: ${VERDICT#keep }"
          ;;
        fence*)
          if set_min_replicas "$FENCED_VALUE"; then
            FENCED=1
            log "fencing: ${VERDICT#fence }; refusing writes (min-replicas-to-write $FENCED_VALUE) so a failover elsewhere cannot lose them"
          fi
          ;;
        unfence*)
          if set_min_replicas "$MIN_REPLICAS_CONFIGURED"; then
            FENCED=0
            log "unfencing: ${VERDICT#unfence }; accepting writes again (min-replicas-to-write $MIN_REPLICAS_CONFIGURED)"
          fi
          ;;
      esac
    elif [ -n "$CURRENT" ] && [ "$CURRENT" != "$MIN_REPLICAS_CONFIGURED" ]; then
      # A fenced master that became a replica must not be fenced if it is promoted later.
      set_min_replicas "$MIN_REPLICAS_CONFIGURED" && log "lifting the fence: this server is now a replica"
      FENCED=0
      BAD_ROUNDS=0
    fi
    [ "$ROLE" = "slave" ] && restore_priority_after_handover
  fi
  # A failed check is confirmed at once rather than after the interval: the fence must be up
  # well before down-after-milliseconds, and one slow answer alone must not raise it.
  if [ "$BAD_ROUNDS" -gt 0 ] && [ "$FENCED" = 0 ]; then continue; fi
  # sleep in the background so the trap runs as soon as the signal arrives
  sleep "$FENCE_CHECK_INTERVAL" &
  wait $!
done
