#!/bin/sh
# preStop hook of the redis container: runs when the pod is deleted on purpose
# (rolling update, node drain, kubectl delete) and before Redis gets SIGTERM.
# A replica has nothing to hand over. A master hands over first, so clients see a
# short write pause instead of a failover after down-after-milliseconds:
#   1. pause writes (CLIENT PAUSE WRITE) so nothing is acknowledged that could be lost;
#   2. wait until a replica has every byte of the replication stream;
#   3. ask a Sentinel for a failover and wait until the Sentinels name a new master;
#   4. turn this server into a replica of it and drop client connections, so clients
#      reconnect through Sentinel to the new master.
# On any problem before the failover request it unpauses and lets shutdown continue:
# Sentinel then fails over after down-after-milliseconds, as for a crash. After the
# request it keeps writes paused (a replica may already be master) and lets shutdown go on.
#
# Extra environment: GOVERNING_SERVICE, HANDOVER_TIMEOUT_SECONDS.
set -eu
SCRIPT_NAME=redis-prestop
# shellcheck source=lib/scripts/common.sh
. "$(dirname "$0")/common.sh"
to_container_log

ME="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"

give_up() {
  if [ -n "${FAILOVER_REQUESTED:-}" ]; then
    # A Sentinel may have promoted a replica already: unpausing could let this server take
    # writes that the new master never sees. It is shutting down anyway; clients reconnect.
    log "no handover: $1; writes stay paused until shutdown because a replica may already be master"
    redis_cmd 127.0.0.1 CLIENT PAUSE 60000 WRITE >/dev/null || true
    exit 0
  fi
  log "no handover: $1; Sentinel will fail over after down-after-milliseconds"
  redis_cmd 127.0.0.1 CLIENT UNPAUSE >/dev/null || true
  exit 0
}

now_ms() {
  # busybox date has no %N; fall back to whole seconds there.
  _ns="$(date +%s%N)"
  case "$_ns" in
    *N) echo $(( $(date +%s) * 1000 )) ;;
    *) echo $(( _ns / 1000000 )) ;;
  esac
}

# replicas_caught_up: true when every online replica has processed the master's whole
# replication stream (Sentinel may promote any of them). Asked of the replicas
# themselves: the offsets the master reports come from acknowledgements sent once a second.
replicas_caught_up() {
  _offset="$(info_field 127.0.0.1 replication master_repl_offset)"
  _online="$(redis_cmd 127.0.0.1 INFO replication | tr -d '\r' \
    | sed -n 's/^slave[0-9]*:ip=\([^,]*\),.*state=online.*/\1/p')"
  [ -n "$_online" ] || return 1
  for _replica in $_online; do
    [ "$(info_field "$_replica" replication slave_repl_offset)" = "$_offset" ] || return 1
  done
}

if [ "$(redis_role 127.0.0.1)" != "master" ]; then
  log "this pod is a replica; nothing to hand over"
  exit 0
fi
if [ "$(info_field 127.0.0.1 replication connected_slaves)" = "0" ]; then
  give_up "no replica is connected"
fi

SENTINELS=""
for addr in $(sentinel_addresses); do
  view="$(sentinel_view "$addr")"
  # shellcheck disable=SC2086
  [ -n "$view" ] && set -- $view && [ "$2" = "$ME" ] && SENTINELS="$SENTINELS $addr"
done
[ -n "$SENTINELS" ] || give_up "no Sentinel that names this pod master is reachable"

# Pick the moment and the Sentinel. Sentinel notices the promotion only in its next INFO
# to the promoted replica, once a second; the failover sends SLAVEOF NO ONE about three
# timer ticks (150-300 ms) after SENTINEL FAILOVER. Asking a Sentinel whose last INFO to
# that replica was ALIGN_MIN_MS..ALIGN_MAX_MS ago puts its next INFO just after the
# promotion, instead of up to a second later. The other candidates must not be due for
# INFO before Sentinel selects (their offsets would change and with them its choice).
# Nothing is paused yet, so waiting here costs clients nothing; after ALIGN_WAIT_MS it
# goes ahead unaligned.
ALIGN_MIN_MS=560
ALIGN_MAX_MS=660
ALIGN_OTHERS_MAX_MS=780
ALIGN_WAIT_MS=2500
align_deadline_ms=$(( $(now_ms) + ALIGN_WAIT_MS ))
SENTINEL=""
while [ -z "$SENTINEL" ] && [ "$(now_ms)" -lt "$align_deadline_ms" ]; do
  for addr in $SENTINELS; do
    forecast="$(sentinel_cmd "$addr" SENTINEL REPLICAS "$MASTER_NAME" | promotion_forecast)"
    [ -n "$forecast" ] || continue
    # shellcheck disable=SC2086
    set -- $forecast
    if [ "$1" -ge "$ALIGN_MIN_MS" ] && [ "$1" -le "$ALIGN_MAX_MS" ] && [ "$2" -le "$ALIGN_OTHERS_MAX_MS" ]; then
      SENTINEL="$addr"
      log "Sentinel $addr would promote $3 and last had INFO from it $1 ms ago; handing over now"
      break
    fi
  done
done
if [ -z "$SENTINEL" ]; then
  # shellcheck disable=SC2086
  set -- $SENTINELS
  SENTINEL="$1"
  log "no Sentinel's INFO timing lined up within ${ALIGN_WAIT_MS} ms; handing over through $SENTINEL unaligned"
fi
aligned_at_ms="$(now_ms)"

deadline_ms=$(( $(now_ms) + HANDOVER_TIMEOUT_SECONDS * 1000 ))
redis_cmd 127.0.0.1 CLIENT PAUSE $(( HANDOVER_TIMEOUT_SECONDS * 1000 + 2000 )) WRITE >/dev/null \
  || give_up "CLIENT PAUSE failed"
paused_at_ms="$(now_ms)"
log "writes paused; waiting for a replica to catch up"

until replicas_caught_up; do
  [ "$(now_ms)" -lt "$deadline_ms" ] || give_up "no replica caught up within ${HANDOVER_TIMEOUT_SECONDS}s"
  sleep 0.05
done

reply="$(sentinel_cmd "$SENTINEL" SENTINEL FAILOVER "$MASTER_NAME" || true)"
[ "$reply" = "OK" ] || give_up "Sentinel $SENTINEL refused the failover: '$reply'"
FAILOVER_REQUESTED=1
log "Sentinel $SENTINEL accepted the failover $(( $(now_ms) - aligned_at_ms )) ms after the timing check; waiting for a new master"

# While the failover is reconfiguring the other replicas, the leading Sentinel already
# answers GET-MASTER-ADDR-BY-NAME with the promoted replica.
while :; do
  [ "$(now_ms)" -lt "$deadline_ms" ] || give_up "the Sentinels named no new master within ${HANDOVER_TIMEOUT_SECONDS}s"
  NEW_MASTER="$(sentinel_cmd "$SENTINEL" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_NAME" | head -n 1)"
  [ -n "$NEW_MASTER" ] && [ "$NEW_MASTER" != "$ME" ] && break
  sleep 0.05
done

# Sentinel would demote this server only after several seconds; doing it here ends the
# pause for clients now. Killing normal connections makes paused clients reconnect,
# ask Sentinel, and retry on the new master.
redis_cmd 127.0.0.1 REPLICAOF "$NEW_MASTER" "$REDIS_PORT" >/dev/null || true
redis_cmd 127.0.0.1 CLIENT KILL TYPE normal >/dev/null || true
redis_cmd 127.0.0.1 CLIENT UNPAUSE >/dev/null || true
echo "replica $NEW_MASTER" > "$ROLE_FILE"
log "handed over to $NEW_MASTER after a $(( $(now_ms) - paused_at_ms )) ms write pause; shutting down as its replica"
