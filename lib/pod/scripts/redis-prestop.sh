#!/bin/sh
# preStop hook of the redis container: runs when the pod is deleted on purpose
# (rolling update, node drain, kubectl delete) and before Redis gets SIGTERM.
#
# First the shutdown gate: this pod waits until every other Redis pod is up and in sync
# and none of them is going down itself, so that a change rolling both StatefulSets at
# once (or a drain during a rollout) never has two Redis pods down together. While it
# waits it still serves. The protocol is in common.sh (shutdown_gate_verdict). After
# GATE_TIMEOUT_SECONDS it goes down anyway, so a drain never hangs on a broken peer.
#
# Then a replica simply goes down. A master hands over first, so clients see a short
# write pause instead of a failover after down-after-milliseconds:
#   1. pick the replica to promote (the one that restarted last: in a rollout it already
#      runs the new revision, so it will not need a handover of its own) and give it
#      replica-priority 1, so Sentinel picks it whatever the replication offsets it saw;
#   2. once a Sentinel names it as its choice, plan the moment from that Sentinel's INFO
#      cadence (failover_schedule in common.sh) so that Sentinel sees the promotion at
#      its next INFO instead of a second later;
#   3. at that moment pause writes (CLIENT PAUSE WRITE), wait until every replica has
#      every byte of the replication stream, and ask that Sentinel for a failover;
#   4. once the Sentinel names the new master, turn this server into its replica and
#      drop client connections, so clients reconnect through Sentinel to the new master.
# On any problem before the failover request it unpauses and lets shutdown continue:
# Sentinel then fails over after down-after-milliseconds, as for a crash. After the
# request it keeps writes paused (a replica may already be master) and lets shutdown go on.
#
# Extra environment: GOVERNING_SERVICE, REDIS_NODES, SENTINEL_QUORUM, GATE_TIMEOUT_SECONDS,
# GATE_POLL_SECONDS, HANDOVER_TIMEOUT_SECONDS, HANDOVER_PAUSE_MS, PAUSE_UNTIL_SHUTDOWN_MS,
# PRIORITY_SEEN_WAIT_MS (how long to wait for a Sentinel to see the new replica-priority, at
# its next INFO to that replica, before handing over without timing), REQUEST_LATENCY_MS,
# SENTINEL_INFO_PERIOD_MS and FAILOVER_LEAD_MS; lib/pod/contract.ts derives the timings.
set -eu
SCRIPT_NAME=redis-prestop
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"
to_container_log

ME="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"

# ---------------------------------------------------------------- shutdown gate

# announce_shutdown: records this pod's announcement on its own server (an ACL user that
# is off: no password, no permissions) and prints it.
announce_shutdown() {
  if [ "$(redis_role 127.0.0.1)" = "master" ]; then _rank=1; else _rank=0; fi
  _stamp="$(now_ms)"
  [ -n "$_stamp" ] || _stamp="$(date +%s)000"
  _marker="$GATE_MARKER_PREFIX:$_rank:$_stamp:$POD_NAME"
  [ "$(redis_cmd 127.0.0.1 ACL SETUSER "$_marker" off)" = "OK" ] || return 1
  echo "$_marker"
}

withdraw_shutdown() {
  redis_cmd 127.0.0.1 ACL DELUSER "$1" >/dev/null || true
}

# shutdown_gate: returns once this pod may go down (or the gate timed out), with its
# announcement in place; one log line per change of mind.
shutdown_gate() {
  if [ "$(redis_cmd 127.0.0.1 PING || true)" != "PONG" ]; then
    log "gate: this server does not answer; going down without waiting for the other Redis pods"
    return 0
  fi
  _gate_deadline=$(( $(date +%s) + GATE_TIMEOUT_SECONDS ))
  _gate_start="$(date +%s)"
  _mine=""
  _said=""
  while :; do
    _verdict="$(shutdown_gate_verdict "$_mine")"
    _reason="${_verdict#* }"
    case "$_verdict" in
      go\ *)
        if [ -z "$_mine" ]; then
          if ! _mine="$(announce_shutdown)"; then
            log "gate: cannot announce the shutdown on this server; going down without waiting"
            return 0
          fi
          continue
        fi
        log "gate: going down after $(( $(date +%s) - _gate_start ))s: $_reason"
        return 0
        ;;
      withdraw\ *)
        withdraw_shutdown "$_mine"
        _mine=""
        ;;
    esac
    if [ "$_verdict" != "$_said" ]; then
      log "gate: ${_verdict%% *}: $_reason"
      _said="$_verdict"
    fi
    if [ "$(date +%s)" -ge "$_gate_deadline" ]; then
      [ -n "$_mine" ] || _mine="$(announce_shutdown || true)"
      log "gate: going down after waiting the limit of ${GATE_TIMEOUT_SECONDS}s, although $_reason"
      return 0
    fi
    sleep "$GATE_POLL_SECONDS"
  done
}

# ---------------------------------------------------------------- handover

give_up() {
  restore_target_priority
  if [ -n "${FAILOVER_REQUESTED:-}" ]; then
    # A Sentinel may have promoted a replica already: unpausing could let this server take
    # writes that the new master never sees. It is shutting down anyway; clients reconnect.
    log "no handover: $1; writes stay paused until shutdown because a replica may already be master"
    redis_cmd 127.0.0.1 CLIENT PAUSE "$PAUSE_UNTIL_SHUTDOWN_MS" WRITE >/dev/null || true
    exit 0
  fi
  log "no handover: $1; Sentinel will fail over after down-after-milliseconds"
  redis_cmd 127.0.0.1 CLIENT UNPAUSE >/dev/null || true
  exit 0
}

restore_target_priority() {
  [ -n "${TARGET_PRIORITY:-}" ] || return 0
  redis_cmd "$TARGET" CONFIG SET replica-priority "$TARGET_PRIORITY" >/dev/null || true
  TARGET_PRIORITY=""
}

# online_replicas: the replicas this master streams to (their announced DNS names).
online_replicas() {
  redis_cmd 127.0.0.1 INFO replication | tr -d '\r' \
    | sed -n 's/^slave[0-9]*:ip=\([^,]*\),.*state=online.*/\1/p'
}

# replicas_caught_up: true when every online replica has processed the master's whole
# replication stream (Sentinel may promote any of them if the chosen one fails). Asked
# of the replicas themselves, all at once: the offsets the master reports come from
# acknowledgements sent once a second.
replicas_caught_up() {
  _state="$(redis_cmd 127.0.0.1 INFO replication | tr -d '\r')"
  _offset="$(echo "$_state" | awk -F: '$1 == "master_repl_offset" { print $2 }')"
  _online="$(echo "$_state" | sed -n 's/^slave[0-9]*:ip=\([^,]*\),.*state=online.*/\1/p')"
  [ -n "$_offset" ] && [ -n "$_online" ] || return 1
  _caught="$( { for _replica in $_online; do info_field "$_replica" replication slave_repl_offset & done; wait; } \
    | grep -c -x "$_offset" || true)"
  [ "$_caught" -eq "$(echo "$_online" | wc -l)" ]
}

# handover_target: "<replica> <uptime-s> <replica-priority>" of the online replica that
# restarted last and may be promoted (priority not 0); nothing when there is none.
handover_target() {
  for _replica in $(online_replicas); do
    _uptime="$(info_field "$_replica" server uptime_in_seconds)"
    _priority="$(redis_cmd "$_replica" CONFIG GET replica-priority | sed -n 2p)"
    [ -n "$_uptime" ] && [ -n "$_priority" ] && [ "$_priority" != "0" ] && echo "$_uptime $_replica $_priority"
  done | sort -n -k 1,1 -k 2,2 | awk 'NR == 1 { print $2, $1, $3 }'
}

shutdown_gate

if [ "$(redis_role 127.0.0.1)" != "master" ]; then
  log "this pod is a replica; nothing to hand over"
  exit 0
fi
if [ "$(info_field 127.0.0.1 replication connected_slaves)" = "0" ]; then
  give_up "no replica is connected"
fi
[ -n "$(now_ms)" ] || give_up "date has no millisecond clock here (%N), which the handover needs"
deadline_ms=$(( $(now_ms) + HANDOVER_TIMEOUT_SECONDS * 1000 ))

SENTINELS=""
for addr in $(sentinel_addresses); do
  view="$(sentinel_view "$addr")"
  # shellcheck disable=SC2086
  [ -n "$view" ] && set -- $view && [ "$2" = "$ME" ] && SENTINELS="$SENTINELS $addr"
done
[ -n "$SENTINELS" ] || give_up "no Sentinel that names this pod master is reachable"

target="$(handover_target)"
[ -n "$target" ] || give_up "no online replica that may be promoted answers"
# shellcheck disable=SC2086
set -- $target
TARGET="$1"
if [ "$3" != "1" ]; then
  [ "$(redis_cmd "$TARGET" CONFIG SET replica-priority 1)" = "OK" ] || give_up "cannot set replica-priority on $TARGET"
  TARGET_PRIORITY="$3"
fi
log "handing over to $TARGET (the replica that restarted last, $2 s ago); its replica-priority is 1 until the handover ends, so Sentinel promotes it"

# How long CLIENT PAUSE and the catch-up check take (the check asks every replica whatever
# the answers): writes pause that long, and a little more, before the failover request.
started_ms="$(now_ms)"
redis_cmd 127.0.0.1 PING >/dev/null || true
replicas_caught_up || true
catchup_ms=$(( $(now_ms) - started_ms + REQUEST_LATENCY_MS ))

# One sample of a Sentinel that names the target as its choice because it has seen the
# new priority (by offset alone, another replica's next INFO could change its mind): how
# long ago its last INFO from the target was.
SENTINEL=""
seen_deadline_ms=$(( $(now_ms) + PRIORITY_SEEN_WAIT_MS ))
until [ -n "$SENTINEL" ] || [ "$(now_ms)" -ge "$seen_deadline_ms" ]; do
  for addr in $SENTINELS; do
    sampled_ms="$(now_ms)"
    forecast="$(sentinel_cmd "$addr" SENTINEL REPLICAS "$MASTER_NAME" | promotion_forecast)"
    # shellcheck disable=SC2086
    set -- $forecast
    [ "${2:-} ${3:-}" = "1 $TARGET:$REDIS_PORT" ] || continue
    SENTINEL="$addr"
    info_age_ms="$1"
    break
  done
  [ -n "$SENTINEL" ] || sleep 0.02
done
if [ -n "$SENTINEL" ]; then
  # shellcheck disable=SC2046
  set -- $(failover_schedule "$(now_ms)" "$sampled_ms" "$info_age_ms" "$catchup_ms")
  pause_at_ms="$1"
  request_at_ms="$2"
  log "Sentinel $SENTINEL would promote $TARGET:$REDIS_PORT and last had INFO from it $info_age_ms ms ago; pausing writes in $(( pause_at_ms - $(now_ms) )) ms, asking for the failover $(( $2 - $1 )) ms later, $FAILOVER_LEAD_MS ms before its next INFO to $TARGET"
else
  # shellcheck disable=SC2086
  set -- $SENTINELS
  SENTINEL="$1"
  pause_at_ms="$(now_ms)"
  request_at_ms="$pause_at_ms"
  log "no Sentinel saw the replica-priority of $TARGET within $PRIORITY_SEEN_WAIT_MS ms; handing over through $SENTINEL without timing (the promotion may be seen up to a second later)"
fi

sleep_until_ms "$pause_at_ms"
redis_cmd 127.0.0.1 CLIENT PAUSE "$HANDOVER_PAUSE_MS" WRITE >/dev/null \
  || give_up "CLIENT PAUSE failed"
paused_at_ms="$(now_ms)"

until replicas_caught_up; do
  [ "$(now_ms)" -lt "$deadline_ms" ] || give_up "no replica caught up within ${HANDOVER_TIMEOUT_SECONDS}s"
  sleep 0.01
done
late_ms=$(( $(now_ms) - request_at_ms ))
sleep_until_ms "$request_at_ms"

reply="$(sentinel_cmd "$SENTINEL" SENTINEL FAILOVER "$MASTER_NAME" || true)"
[ "$reply" = "OK" ] || give_up "Sentinel $SENTINEL refused the failover: '$reply'"
FAILOVER_REQUESTED=1
if [ "$late_ms" -gt 0 ]; then
  log "Sentinel $SENTINEL accepted the failover $late_ms ms later than planned (the catch-up took longer); if that leaves less than two timer ticks before its next INFO, it sees the promotion a second later"
else
  log "Sentinel $SENTINEL accepted the failover $(( $(now_ms) - paused_at_ms )) ms into the write pause; waiting for it to name the new master"
fi

# Once it has seen the promotion, the Sentinel that runs the failover answers
# GET-MASTER-ADDR-BY-NAME with the promoted replica.
while :; do
  [ "$(now_ms)" -lt "$deadline_ms" ] || give_up "the Sentinels named no new master within ${HANDOVER_TIMEOUT_SECONDS}s"
  NEW_MASTER="$(sentinel_cmd "$SENTINEL" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_NAME" | head -n 1)"
  [ -n "$NEW_MASTER" ] && [ "$NEW_MASTER" != "$ME" ] && break
  sleep 0.02
done

# Sentinel would demote this server only after several seconds; doing it here ends the
# pause for clients now. Killing normal connections makes paused clients reconnect, ask
# Sentinel, and retry on the new master. One connection for the three (CLIENT KILL skips
# the connection that sends it): the end of the pause is what clients are waiting for.
printf 'REPLICAOF %s %s\nCLIENT KILL TYPE normal\nCLIENT UNPAUSE\n' "$NEW_MASTER" "$REDIS_PORT" \
  | redis_cmd 127.0.0.1 >/dev/null 2>&1 || true
unpaused_at_ms="$(now_ms)"
echo "replica $NEW_MASTER" > "$ROLE_FILE"
log "handed over to $NEW_MASTER after a $(( unpaused_at_ms - paused_at_ms )) ms write pause; shutting down as its replica"
restore_target_priority
