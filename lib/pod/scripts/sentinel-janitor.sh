#!/bin/sh
# Sidecar of every redis-sentinel pod. Sentinel never forgets a peer it has seen, so
# each replaced Sentinel pod (new name, new IP, new ID) stays behind as a phantom voter,
# and after a few rollouts no failover can win a majority. This loop resets the local
# Sentinel's list of peers when, and only when, it is safe:
#   - it knows more Sentinels than exist (SENTINEL_REPLICAS) and one of them is down;
#   - the master is up, not subjectively or objectively down, no failover in progress;
#   - the local Sentinel has been stable for a while (no reset in the last 30s).
# After SENTINEL RESET the Sentinel rediscovers live peers from their hello messages
# (every 2s) and the replicas from the master's INFO within a second or two.
#
# It also keeps Sentinel's internal periods at SENTINEL_TIMINGS ("param value ..." as
# SENTINEL DEBUG takes them). Those are compile-time defaults that only SENTINEL DEBUG
# changes, and only until the process restarts, so this loop checks them every second.
# The one that matters: Sentinel sends INFO to replicas every 10s until a failover
# starts, then every second, with the first INFO at once; it sees the promoted replica
# only at the INFO after that, a full second later. With a steady 1s period there is no
# restart of the cadence, and the promotion is seen half a second later on average.
#
# Extra environment: SENTINEL_REPLICAS, JANITOR_INTERVAL_SECONDS, SENTINEL_TIMINGS.
set -eu
SCRIPT_NAME=sentinel-janitor
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"

LAST_RESET=0

# master_field NAME: one field of SENTINEL MASTER as the local Sentinel sees it.
master_field() {
  sentinel_cmd 127.0.0.1 SENTINEL MASTER "$MASTER_NAME" | awk -v f="$1" '
    NR % 2 == 1 { key = $0; next }
    key == f { print; exit }'
}

# down_peers: how many known Sentinels the local one flags as down.
down_peers() {
  sentinel_cmd 127.0.0.1 SENTINEL SENTINELS "$MASTER_NAME" | awk '
    prev == "flags" && /_down/ { n++ }
    { prev = $0 }
    END { print n + 0 }'
}

reset_if_phantoms() {
  _known="$(master_field num-other-sentinels)"
  [ -n "$_known" ] || return 0
  [ "$_known" -gt $(( SENTINEL_REPLICAS - 1 )) ] || return 0
  _down="$(down_peers)"
  [ "$_down" -gt 0 ] || return 0
  _flags="$(master_field flags)"
  [ "$_flags" = "master" ] || { log "phantom Sentinels present but master flags are '$_flags'; not resetting now"; return 0; }
  [ $(( $(date +%s) - LAST_RESET )) -ge 30 ] || return 0
  log "resetting: this Sentinel knows $_known other Sentinels ($_down down) but only $(( SENTINEL_REPLICAS - 1 )) exist"
  sentinel_cmd 127.0.0.1 SENTINEL RESET "$MASTER_NAME" >/dev/null || true
  LAST_RESET="$(date +%s)"
}

# random_seconds N: 0..N-1, so the janitors of different pods do not reset in lockstep.
random_seconds() {
  echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1 ))
}

# As PID 1 a shell ignores SIGTERM; exit at once so pod deletion does not wait out the grace period.
trap 'exit 0' TERM INT

# next_phantom_check: when to look for phantoms next (the interval plus jitter from now).
next_phantom_check() {
  echo $(( $(date +%s) + JANITOR_INTERVAL_SECONDS + $(random_seconds "$JANITOR_INTERVAL_SECONDS") ))
}

next_check="$(next_phantom_check)"
while :; do
  ensure_sentinel_timings 127.0.0.1 || true
  if [ "$(date +%s)" -ge "$next_check" ]; then
    reset_if_phantoms || true
    next_check="$(next_phantom_check)"
  fi
  # sleep in the background so the trap runs as soon as the signal arrives
  sleep 1 &
  wait $!
done
