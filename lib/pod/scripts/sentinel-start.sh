#!/bin/sh
# Entrypoint of the sentinel container in every Sentinel pod.
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
# The config is made anew from the template at every start (only ID and epochs are read
# back from the previous one), so the ACL users and credentials Sentinel wrote back into
# it are never carried over: each appears once, with the Secret's current values.
# Clients, peers and the scripts must authenticate (default user off); towards Redis it
# logs in as the sentinel user (auth-user/auth-pass), and towards the other Sentinels as
# well (sentinel-user/sentinel-pass).
#
# Extra environment: POD_IP, REDIS_NODES (space-separated short DNS names), SENTINEL_TEMPLATE
# (the rendered config), SENTINEL_CONFIG (its writable copy), ACL_USERS_FILE, AUTH_SOURCE,
# AUTH_KEYS, START_RETRY_SECONDS.
set -eu
SCRIPT_NAME=sentinel-start
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=lib/pod/scripts/sentinel-decide.sh
. "$(dirname "$0")/sentinel-decide.sh"

# find_master: sets MASTER_HOST and EPOCH from decide_master, once it names a master.
find_master() {
  while :; do
    read -r _verdict MASTER_HOST EPOCH _reason <<EOF
$(decide_master)
EOF
    if [ "$_verdict" = "monitor" ]; then
      log "monitoring $MASTER_HOST because $_reason"
      return 0
    fi
    log "$_reason; retrying"
    sleep "$START_RETRY_SECONDS"
  done
}

require_auth_keys
PASSWORD="$(client_password sentinel)"
MY_ID="$(awk '$1 == "sentinel" && $2 == "myid" { print $3 }' "$SENTINEL_CONFIG" 2>/dev/null || true)"
find_master
read -r CURRENT_EPOCH LEADER_EPOCH EPOCH_REASON <<EOF
$(decide_epochs "$SENTINEL_CONFIG" "$EPOCH")
EOF

{
  awk -v host="$MASTER_HOST" '$1 == "sentinel" && $2 == "monitor" { $4 = host } { print }' "$SENTINEL_TEMPLATE"
  acl_user_lines
  echo "sentinel auth-user $MASTER_NAME sentinel"
  echo "sentinel auth-pass $MASTER_NAME \"$PASSWORD\""
  echo "sentinel sentinel-user sentinel"
  echo "sentinel sentinel-pass \"$PASSWORD\""
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
} > "$SENTINEL_CONFIG.tmp"
chmod 0600 "$SENTINEL_CONFIG.tmp"
mv "$SENTINEL_CONFIG.tmp" "$SENTINEL_CONFIG"
[ -n "$MY_ID" ] && log "keeping Sentinel ID $MY_ID from the previous start"
log "starting with current-epoch $CURRENT_EPOCH and leader-epoch $LEADER_EPOCH because $EPOCH_REASON"

exec redis-sentinel "$SENTINEL_CONFIG"
