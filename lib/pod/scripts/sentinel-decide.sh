#!/bin/sh
# Decisions of a Sentinel pod, sourced (after common.sh) by sentinel-start.sh (which master
# to monitor, which epochs to start with) and sentinel-janitor.sh (when to reset phantom
# Sentinels); never run on its own. Each decision is a function that prints a verdict and
# its reason and changes nothing, so the unit tests can run it against a stand-in
# redis-cli and stand-in previous configs.
#
# Environment (from lib/pod/contract.ts): MASTER_NAME, REDIS_NODES, POD_IP (sentinel
# container); POD_IP, SENTINEL_REPLICAS, JANITOR_RESET_HOLDOFF_SECONDS (janitor).

# decide_master: which master a starting Sentinel monitors, as "monitor <host> <config-epoch>
# <reason>" (config epoch 0 when no Sentinel knows it) or "wait - - <reason>":
#   1. the other Sentinels' view (newest config epoch wins), so a replacement pod joins
#      with the current state instead of the bootstrap master;
#   2. if no Sentinel knows it, the Redis pod that reports role master with the largest
#      replication offset;
#   3. if none does (it is down as well), the master every reachable replica follows: the
#      Sentinels then see it down and fail over to one of those replicas;
#   4. otherwise (replicas disagree or none answers), wait: a guess could elect a stale master.
decide_master() {
  read -r _epoch _host _port _flags _why <<EOF
$(sentinel_views "$POD_IP" | newest_sentinel_view)
EOF
  if [ -n "$_host" ]; then
    echo "monitor $_host $_epoch the other Sentinels name it master (epoch $_epoch)"
    return 0
  fi
  _found="$(master_from_redis_nodes)"
  if [ -n "$_found" ]; then
    echo "monitor ${_found%% *} 0 no Sentinel knows the master and it reports role master"
    return 0
  fi
  _followed="$(master_followed_by_replicas)"
  if [ -n "$_followed" ]; then
    echo "monitor $_followed 0 no Sentinel knows the master, no Redis pod reports role master, and every reachable replica follows it (if it is down, the Sentinels fail over)"
    return 0
  fi
  echo "wait - - no Sentinel and no Redis pod names a master yet"
}

# master_from_redis_nodes: "<host> <offset>" of the Redis pod that reports itself master
# with the largest replication offset, or nothing.
master_from_redis_nodes() {
  for _node in $REDIS_NODES; do
    _host="$(fqdn "$_node")"
    _role="$(redis_cmd "$_host" ROLE | head -n 2 | tr '\n' ' ')"
    # shellcheck disable=SC2086
    set -- $_role
    [ "${1:-}" = "master" ] && echo "$_host ${2:-0}"
  done | sort -n -r -k 2,2 | head -n 1
}

# master_followed_by_replicas: the master_host that every reachable replica follows, when
# at least one answers and they all name the same one; nothing otherwise.
master_followed_by_replicas() {
  for _node in $REDIS_NODES; do
    info_field "$(fqdn "$_node")" replication master_host
  done | sort -u | awk 'NF { n++; host = $0 } END { if (n == 1) print host }'
}


# decide_epochs PREVIOUS_CONFIG DISCOVERED_EPOCH: "<current-epoch> <leader-epoch> <reason>"
# for a Sentinel about to start.
#
# Sentinel votes at most once per epoch: it records the epoch of its last vote for a
# master (leader-epoch) and its current epoch in its config file, and writes the file to
# disk before it answers the vote request. A Sentinel restarted without them would
# answer the next vote request of that epoch as if it had never voted and could elect a
# second leader for the same epoch. The container's emptyDir keeps the file Sentinel
# rewrote, so both are carried over from it (only the monitored master's leader-epoch:
# the template monitors just that one). The current epoch is also raised to the newest
# config epoch the other Sentinels report (DISCOVERED_EPOCH, 0 if none) and is never
# below the leader epoch or the previous config epoch, as Sentinel itself keeps it.
decide_epochs() {
  { cat "$1" 2>/dev/null || true; } | awk -v master="$MASTER_NAME" -v discovered="${2:-0}" '
    $1 == "sentinel" && $2 == "current-epoch" && NF == 3 { current = $3 + 0; seen = 1 }
    $1 == "sentinel" && $2 == "leader-epoch" && $3 == master && NF == 4 { leader = $4 + 0; seen = 1 }
    $1 == "sentinel" && $2 == "config-epoch" && $3 == master && NF == 4 { config = $4 + 0; seen = 1 }
    END {
      epoch = current + 0
      if (leader > epoch) epoch = leader
      if (config > epoch) epoch = config
      if (discovered + 0 > epoch) epoch = discovered + 0
      if (seen) {
        reason = "the previous run of this container recorded current-epoch " current + 0 ", leader-epoch " leader + 0 " and config-epoch " config + 0
      } else {
        reason = "no epochs recorded by a previous run of this container"
      }
      print epoch, leader + 0, reason "; the other Sentinels report config-epoch " discovered + 0
    }'
}

# ---- the janitor: phantom Sentinels

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

# decide_reset SECONDS_SINCE_LAST_RESET: whether the janitor resets the local Sentinel's
# list of peers now, as "reset <reason>", "hold <reason>" (phantoms are there, but
# resetting now is not safe; worth a log line) or "none <reason>". Safe means: it knows
# more Sentinels than exist (SENTINEL_REPLICAS) and one of them is down; the master is up,
# not subjectively or objectively down, no failover in progress; and it has not been
# reset in the last JANITOR_RESET_HOLDOFF_SECONDS.
decide_reset() {
  _known="$(master_field num-other-sentinels)"
  if [ -z "$_known" ]; then
    echo "none the local Sentinel does not answer or does not know the master"
    return 0
  fi
  _exist=$(( SENTINEL_REPLICAS - 1 ))
  if [ "$_known" -le "$_exist" ]; then
    echo "none this Sentinel knows $_known other Sentinels, no more than the $_exist that exist"
    return 0
  fi
  _down="$(down_peers)"
  if [ "$_down" -eq 0 ]; then
    echo "none this Sentinel knows $_known other Sentinels, more than the $_exist that exist, but none is down"
    return 0
  fi
  _flags="$(master_field flags)"
  if [ "$_flags" != "master" ]; then
    echo "hold phantom Sentinels present but master flags are '$_flags'; not resetting now"
  elif [ "$1" -lt "$JANITOR_RESET_HOLDOFF_SECONDS" ]; then
    echo "none phantom Sentinels present, but this Sentinel was reset $1s ago (less than ${JANITOR_RESET_HOLDOFF_SECONDS}s)"
  else
    echo "reset this Sentinel knows $_known other Sentinels ($_down down) but only $_exist exist"
  fi
}

# ---- the janitor: a Sentinel that started apart from the others

# decide_rejoin: whether the local Sentinel monitors another master than a majority of
# the Sentinels at the same config epoch, as "apart <reason>" or "none <reason>".
#
# Sentinels that start while no Sentinel knows the master (every pod restarted at once)
# each choose from what the Redis pods answer at that moment (decide_master). One that
# chose while the real master was still starting can monitor one of its replicas, at the
# same config epoch (0) as the others. Sentinel never reconciles that: a hello message
# moves a Sentinel only to a newer epoch, and the others answer its "is the master down?"
# about an address they do not monitor. So it stays apart for good, sees its "master" (a
# replica) down, cannot fail over, and sends every client that asks it to a replica.
# Apart means, all at once:
#   - no other Sentinel reports a newer config epoch (hello messages handle that case);
#   - more than half of all SENTINEL_REPLICAS Sentinels, not counting this one, name one
#     other master at this Sentinel's config epoch;
#   - this Sentinel's master is down in its eyes or reports itself a replica (a master
#     that says it is one is left to the guard), and no failover is in progress.
# The janitor restarts an apart Sentinel (its start takes the majority's view); a
# Sentinel that is right never sees a majority at its epoch name another master.
decide_rejoin() {
  _mine="$(sentinel_view 127.0.0.1)"
  if [ -z "$_mine" ]; then
    echo "none the local Sentinel does not answer or does not know the master"
    return 0
  fi
  # shellcheck disable=SC2086
  set -- $_mine
  _epoch="$1" _host="$2" _flags="$4"
  case "$_flags" in
    *failover*)
      echo "none a failover is in progress ($_flags)"
      return 0
      ;;
  esac
  read -r _newer _count _other <<EOF
$(sentinel_views "$POD_IP" | awk -v epoch="$_epoch" -v mine="$_host" '
    NF && $1 + 0 > epoch + 0 { newer++ }
    NF && $1 + 0 == epoch + 0 && $2 != mine { votes[$2]++ }
    END {
      best = ""
      for (h in votes) if (best == "" || votes[h] > votes[best] || (votes[h] == votes[best] && h < best)) best = h
      print newer + 0, (best == "" ? 0 : votes[best]), (best == "" ? "-" : best)
    }')
EOF
  _needed=$(( SENTINEL_REPLICAS / 2 + 1 ))
  if [ "$_newer" -gt 0 ]; then
    echo "none $_newer other Sentinels report a newer config epoch than $_epoch; their hello messages bring this one along"
  elif [ "$_count" -lt "$_needed" ]; then
    echo "none no majority of Sentinels ($_needed of $SENTINEL_REPLICAS besides this one) names another master than $_host at epoch $_epoch"
  else
    _role="$(master_field role-reported)"
    case "$_flags,$_role" in
      *s_down*|*,slave)
        echo "apart this Sentinel monitors $_host ($_flags, reports role '$_role'), but $_count other Sentinels name $_other at the same config epoch $_epoch"
        ;;
      *)
        echo "none $_count other Sentinels name $_other at epoch $_epoch, but $_host answers as a master here; the guard settles two masters"
        ;;
    esac
  fi
}
