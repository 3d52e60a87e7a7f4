#!/bin/sh
# Entrypoint of the sentinel container in every redis-sentinel pod.
# Sentinel rewrites its config file, so the rendered template is copied to a writable
# emptyDir. Before starting, it finds the current master:
#   1. from the other Sentinels (newest config epoch wins), so a replacement pod joins
#      with the current state instead of the bootstrap master;
#   2. if no Sentinel knows it (all of them were replaced at once), from the Redis pods
#      themselves: the one that reports role master with the largest replication offset;
#   3. if none reports master (it is down as well), the master every reachable replica
#      follows: the Sentinels then see it down and fail over to one of those replicas;
#   4. otherwise (replicas disagree or none answers) it waits: starting with a guess
#      could elect a stale master.
# A restarted container keeps its Sentinel ID, current epoch and leader epoch (read back
# from the config the previous run left in the emptyDir), so it is not counted as a new
# voter by its peers and never votes twice in one epoch. Every other Redis pod is listed as a
# known replica, so a Sentinel that starts while the master is down can still fail over.
#
# Extra environment: POD_IP, REDIS_NODES (space-separated short DNS names), SENTINEL_DATA.
set -eu
SCRIPT_NAME=sentinel-start
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=lib/pod/scripts/sentinel-decide.sh
. "$(dirname "$0")/sentinel-decide.sh"

# (The unit tests set SENTINEL_TEMPLATE.)
TEMPLATE="${SENTINEL_TEMPLATE:-/etc/sentinel-template/sentinel.conf}"
CONFIG="$SENTINEL_DATA/sentinel.conf"

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

find_master() {
  while :; do
    _view="$(newest_sentinel_view "$POD_IP")"
    if [ -n "$_view" ]; then
      # shellcheck disable=SC2086
      set -- $_view
      MASTER_HOST="$2"
      EPOCH="$1"
      log "monitoring $MASTER_HOST because the other Sentinels name it master (epoch $EPOCH)"
      return 0
    fi
    _found="$(master_from_redis_nodes)"
    if [ -n "$_found" ]; then
      MASTER_HOST="${_found%% *}"
      EPOCH=0
      log "monitoring $MASTER_HOST because no Sentinel knows the master and it reports role master"
      return 0
    fi
    _followed="$(master_followed_by_replicas)"
    if [ -n "$_followed" ]; then
      MASTER_HOST="$_followed"
      EPOCH=0
      log "monitoring $MASTER_HOST because no Sentinel knows the master, no Redis pod reports role master, and every reachable replica follows it (if it is down, the Sentinels fail over)"
      return 0
    fi
    log "no Sentinel and no Redis pod names a master yet; retrying"
    sleep 1
  done
}

PASSWORD="$(redis_password)"
require_plain_password "$PASSWORD"
MY_ID="$(awk '$1 == "sentinel" && $2 == "myid" { print $3 }' "$CONFIG" 2>/dev/null || true)"
find_master
read -r CURRENT_EPOCH LEADER_EPOCH EPOCH_REASON <<EOF
$(decide_epochs "$CONFIG" "$EPOCH")
EOF

{
  awk -v host="$MASTER_HOST" '$1 == "sentinel" && $2 == "monitor" { $4 = host } { print }' "$TEMPLATE"
  echo "sentinel auth-pass $MASTER_NAME \"$PASSWORD\""
  if [ "$EPOCH" -gt 0 ]; then
    echo "sentinel config-epoch $MASTER_NAME $EPOCH"
  fi
  if [ "$CURRENT_EPOCH" -gt 0 ]; then
    echo "sentinel current-epoch $CURRENT_EPOCH"
  fi
  if [ "$LEADER_EPOCH" -gt 0 ]; then
    echo "sentinel leader-epoch $MASTER_NAME $LEADER_EPOCH"
  fi
  if [ -n "$MY_ID" ]; then
    echo "sentinel myid $MY_ID"
  fi
  # Sentinel learns replicas from the master's INFO. A Sentinel that starts while the
  # master is down would know none, and if it then won the vote it would abort the
  # failover for lack of a replica, and nobody would retry for 2 x failover-timeout.
  for node in $REDIS_NODES; do
    host="$(fqdn "$node")"
    [ "$host" = "$MASTER_HOST" ] || echo "sentinel known-replica $MASTER_NAME $host $REDIS_PORT"
  done
} > "$CONFIG.tmp"
chmod 0600 "$CONFIG.tmp"
mv "$CONFIG.tmp" "$CONFIG"
[ -n "$MY_ID" ] && log "keeping Sentinel ID $MY_ID from the previous start"
log "starting with current-epoch $CURRENT_EPOCH and leader-epoch $LEADER_EPOCH because $EPOCH_REASON"

exec redis-sentinel "$CONFIG"
