#!/bin/sh
# Entrypoint of the redis container in every Redis pod (redis-master-N and redis-slave-N).
# Decides, before Redis accepts a single connection, whether this pod starts as master
# or as a replica and of whom:
#   1. Ask every Sentinel; the answer with the newest config epoch wins. A pod that
#      Sentinel still lists as master waits for the failover to finish instead of coming
#      back as a second master when Sentinel sees it down, or when its IP changed:
#      Sentinel keeps using the IP it resolved, will find it down, and fail over anyway.
#   2. Only when no Sentinel knows the master, follow this pod's own persisted record
#      of its last role (written to the data volume by this script and the probe).
#   3. Only on a true first boot (no record) does the bootstrap pod, redis-master-0,
#      start as master; every other pod starts as its replica.
# Then it writes /etc/redis/redis.conf (template + password + announce + replicaof)
# and execs redis-server.
#
# Extra environment: GOVERNING_SERVICE, BOOTSTRAP_MASTER, FAILOVER_WAIT_SECONDS, POD_IP.
set -eu
SCRIPT_NAME=redis-start
# shellcheck source=lib/scripts/common.sh
. "$(dirname "$0")/common.sh"

IP_FILE=/data/redis-ha-ip
TEMPLATE=/etc/redis-template/redis.conf
CONFIG=/etc/redis/redis.conf

start_as_master() {
  log "starting as master because $1"
  echo "master" > "$ROLE_FILE"
  write_config ""
}

start_as_replica_of() {
  log "starting as replica of $1 because $2"
  echo "replica $1" > "$ROLE_FILE"
  write_config "$1"
}

write_config() {
  _password="$(redis_password)"
  require_plain_password "$_password"
  {
    cat "$TEMPLATE"
    echo "replica-announce-ip $ME"
    echo "replica-announce-port $REDIS_PORT"
    echo "requirepass \"$_password\""
    echo "masterauth \"$_password\""
    if [ -n "$1" ]; then echo "replicaof $1 $REDIS_PORT"; fi
  } > "$CONFIG.tmp"
  chmod 0600 "$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
}

# A master that Sentinel cannot reach is being (or about to be) replaced: wait for the
# new master rather than accept writes that the failover will throw away. If no
# failover comes (no replica to promote, no Sentinel majority), start as master.
wait_for_failover_of_self() {
  _deadline=$(( $(date +%s) + FAILOVER_WAIT_SECONDS ))
  while [ "$(date +%s)" -lt "$_deadline" ]; do
    sleep 1
    _view="$(newest_sentinel_view "")"
    [ -z "$_view" ] && continue
    # shellcheck disable=SC2086
    set -- $_view
    if [ "$2" != "$ME" ]; then
      start_as_replica_of "$2" "Sentinels failed over to it (epoch $1) while this pod was down"
      return 0
    fi
  done
  start_as_master "the Sentinels list it as master and no failover happened within ${FAILOVER_WAIT_SECONDS}s"
}

decide_from_own_record() {
  _record="$(cat "$ROLE_FILE" 2>/dev/null || true)"
  case "$_record" in
    master)
      start_as_master "no Sentinel knows the master and this pod's data volume says it was master"
      ;;
    "replica "*)
      start_as_replica_of "${_record#replica }" "no Sentinel knows the master and this pod's data volume says it followed that master"
      ;;
    *)
      if [ "$ME" = "$(fqdn "$BOOTSTRAP_MASTER")" ]; then
        start_as_master "this is the first boot (no Sentinel knows a master, no role record) and it is the bootstrap master"
      else
        start_as_replica_of "$(fqdn "$BOOTSTRAP_MASTER")" "this is the first boot (no Sentinel knows a master, no role record)"
      fi
      ;;
  esac
}

ME="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"
PREVIOUS_IP="$(cat "$IP_FILE" 2>/dev/null || true)"
echo "$POD_IP" > "$IP_FILE"
VIEW="$(newest_sentinel_view "")"
if [ -n "$VIEW" ]; then
  # shellcheck disable=SC2086
  set -- $VIEW
  if [ "$2" != "$ME" ]; then
    start_as_replica_of "$2" "the Sentinels name it master (epoch $1)"
  else
    case "$4" in
      *s_down*|*o_down*|*failover*)
        log "the Sentinels list this pod as master but see it down ($4); waiting up to ${FAILOVER_WAIT_SECONDS}s for their failover"
        wait_for_failover_of_self
        ;;
      *)
        if [ -n "$PREVIOUS_IP" ] && [ "$PREVIOUS_IP" != "$POD_IP" ]; then
          log "the Sentinels list this pod as master, but its IP changed ($PREVIOUS_IP -> $POD_IP) and Sentinel will not follow it; waiting up to ${FAILOVER_WAIT_SECONDS}s for their failover"
          wait_for_failover_of_self
        else
          start_as_master "the Sentinels name this pod master (epoch $1)"
        fi
        ;;
    esac
  fi
else
  decide_from_own_record
fi

exec redis-server "$CONFIG"
