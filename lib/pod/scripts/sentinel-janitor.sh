#!/bin/sh
# Sidecar of every Sentinel pod. Sentinel never forgets a peer it has seen, so
# each replaced Sentinel pod (new name, new IP, new ID) stays behind as a phantom voter,
# and after a few rollouts no failover can win a majority. This loop resets the local
# Sentinel's list of peers when, and only when, it is safe:
#   - it knows more Sentinels than exist (SENTINEL_REPLICAS) and one of them is down;
#   - the master is up, not subjectively or objectively down, no failover in progress;
#   - the local Sentinel has been stable for a while (no reset in the last
#     JANITOR_RESET_HOLDOFF_SECONDS).
# (decide_reset in sentinel-decide.sh has the rule; this loop acts on it.)
# On the same checks it restarts a Sentinel that monitors another master than a majority
# of the others at the same config epoch, which Sentinel never reconciles itself
# (decide_rejoin has the rule).
# It also keeps the passwords in step with the auth Secret during a rotation (auth-sync.sh).
# After SENTINEL RESET the Sentinel rediscovers live peers from their hello messages
# (every 2s) and the replicas from the master's INFO within a second or two.
#
# It also keeps Sentinel's internal periods at SENTINEL_TIMINGS ("param value ..." as
# SENTINEL DEBUG takes them). Those are compile-time defaults that only SENTINEL DEBUG
# changes, and only until the process restarts, so this loop checks them every
# SENTINEL_TIMINGS_CHECK_SECONDS.
# The one that matters: Sentinel sends INFO to replicas every 10s until a failover
# starts, then every second, with the first INFO at once; it sees the promoted replica
# only at the INFO after that, a full second later. With a steady 1s period there is no
# restart of the cadence, and the promotion is seen half a second later on average.
#
# Extra environment: SENTINEL_REPLICAS, JANITOR_INTERVAL_SECONDS, JANITOR_RESET_HOLDOFF_SECONDS,
# SENTINEL_TIMINGS, SENTINEL_TIMINGS_CHECK_SECONDS (from lib/pod/contract.ts, which derives
# SENTINEL_TIMINGS from the INFO period the preStop hook times its handover by), and those
# of auth-sync.sh.
set -eu
SCRIPT_NAME=sentinel-janitor
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=lib/pod/scripts/sentinel-decide.sh
. "$(dirname "$0")/sentinel-decide.sh"
# shellcheck source=lib/pod/scripts/auth-sync.sh
. "$(dirname "$0")/auth-sync.sh"
AUTH_SERVER=sentinel

LAST_RESET=0

# reset_if_phantoms: acts on decide_reset (sentinel-decide.sh).
reset_if_phantoms() {
  _verdict="$(decide_reset $(( $(date +%s) - LAST_RESET )))"
  case "$_verdict" in
    reset\ *)
      log "resetting: ${_verdict#reset }"
      sentinel_cmd 127.0.0.1 SENTINEL RESET "$MASTER_NAME" >/dev/null || true
      LAST_RESET="$(date +%s)"
      ;;
    hold\ *) log "${_verdict#hold }" ;;
  esac
}

# rejoin_if_apart: acts on decide_rejoin (sentinel-decide.sh). A Sentinel found apart on
# REJOIN_AFTER_CHECKS checks in a row (5-10 s apart, so not a passing state) is shut down;
# its container restarts and sentinel-start.sh takes the majority's view.
REJOIN_AFTER_CHECKS=2
APART_CHECKS=0
rejoin_if_apart() {
  _verdict="$(decide_rejoin)"
  case "$_verdict" in
    apart\ *)
      APART_CHECKS=$(( APART_CHECKS + 1 ))
      if [ "$APART_CHECKS" -ge "$REJOIN_AFTER_CHECKS" ]; then
        log "restarting the Sentinel to rejoin the others: ${_verdict#apart } (on $APART_CHECKS checks in a row)"
        sentinel_cmd 127.0.0.1 SHUTDOWN >/dev/null 2>&1 || true
        APART_CHECKS=0
      else
        log "apart from the other Sentinels: ${_verdict#apart }; restarting it if this still holds at the next check"
      fi
      ;;
    *) APART_CHECKS=0 ;;
  esac
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
  # Password rotation: the ACL passwords, auth-pass, sentinel-pass and the status file (auth-sync.sh).
  auth_sync_if_due sync_sentinel_passwords sentinel
  ensure_sentinel_timings 127.0.0.1 || true
  if [ "$(date +%s)" -ge "$next_check" ]; then
    reset_if_phantoms || true
    rejoin_if_apart || true
    next_check="$(next_phantom_check)"
  fi
  # sleep in the background so the trap runs as soon as the signal arrives
  sleep "$SENTINEL_TIMINGS_CHECK_SECONDS" &
  wait $!
done
