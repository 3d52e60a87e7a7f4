#!/bin/sh
# Entrypoint of the redis container in every Redis pod (of the master and the replica StatefulSet).
# Decides, before Redis accepts a single connection, whether this pod starts as master,
# as a replica and of whom, or not yet (decide_start in redis-decide.sh has the rules):
#   - The Sentinels name the master (every Sentinel is asked; the newest epoch wins).
#   - A pod that the Sentinels still name master but that restarted waits for their
#     failover when a replica with the data can take over: the replica has everything in
#     memory, while coming back here means reloading the data (minutes for a big dataset,
#     answering LOADING, which Sentinel counts as alive) and a full resync of every replica.
#   - A pod whose volume is empty never becomes master while another pod has data or does
#     not answer; it waits, or follows the master the Sentinels name.
#   - Without any Sentinel, the pod's own role record decides; on a true first boot (no
#     data anywhere) the bootstrap master (BOOTSTRAP_MASTER) is master.
# While the verdict is "wait", Redis is not running, so the Sentinels see this pod down
# and fail over; it decides again every START_RETRY_SECONDS. Then it writes REDIS_CONFIG
# (the rendered REDIS_TEMPLATE + ACL users + replication credentials + announce +
# replicaof) and execs redis-server. Before anything else it refuses to start, with one
# log line, when the auth Secret lacks a key (require_auth_keys in common.sh).
#
# Extra environment: GOVERNING_SERVICE, POD_IP, IP_FILE (this pod's IP at its last start),
# REDIS_TEMPLATE, REDIS_CONFIG, ACL_USERS_FILE, AUTH_SOURCE, AUTH_KEYS,
# START_RETRY_SECONDS (and those of redis-decide.sh).
set -eu
SCRIPT_NAME=redis-start
# shellcheck source=lib/pod/scripts/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=lib/pod/scripts/redis-decide.sh
. "$(dirname "$0")/redis-decide.sh"

start_as_master() {
  log "starting as master because $1"
  echo "master" > "$ROLE_FILE"
  rm -f "$ALLOW_EMPTY_FILE"
  write_config ""
}

start_as_replica_of() {
  log "starting as replica of $1 because $2"
  echo "replica $1" > "$ROLE_FILE"
  write_config "$1"
}

# write_config MASTER: redis.conf for a master (MASTER empty) or a replica of MASTER. The
# ACL users carry password hashes only; masterauth is the replication user's password in
# plain text (a client credential), in the memory-backed config directory, mode 0600.
write_config() {
  _masterauth="$(client_password replication)"
  {
    cat "$REDIS_TEMPLATE"
    echo "replica-announce-ip $ME"
    echo "replica-announce-port $REDIS_PORT"
    acl_user_lines
    echo "masteruser replication"
    echo "masterauth \"$_masterauth\""
    if [ -n "$1" ]; then echo "replicaof $1 $REDIS_PORT"; fi
  } > "$REDIS_CONFIG.tmp"
  chmod 0600 "$REDIS_CONFIG.tmp"
  mv "$REDIS_CONFIG.tmp" "$REDIS_CONFIG"
}

require_auth_keys
ME="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"
PREVIOUS_IP="$(cat "$IP_FILE" 2>/dev/null || true)"
echo "$POD_IP" > "$IP_FILE"
log "data volume: $(volume_summary)"
STARTED="$(date +%s)"
LAST_REASON=""
while :; do
  VERDICT="$(decide_start $(( $(date +%s) - STARTED )) "$PREVIOUS_IP")"
  read -r ACTION HOST REASON <<EOF2
$VERDICT
EOF2
  case "$ACTION" in
    master) start_as_master "$REASON"; break ;;
    replica) start_as_replica_of "$HOST" "$REASON"; break ;;
    *)
      if [ "$REASON" != "$LAST_REASON" ]; then
        log "not starting yet: $REASON"
        LAST_REASON="$REASON"
      fi
      sleep "$START_RETRY_SECONDS"
      ;;
  esac
done

exec redis-server "$REDIS_CONFIG"
