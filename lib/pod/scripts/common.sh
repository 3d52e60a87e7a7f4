#!/bin/sh
# Shared functions for the scripts in this directory; sourced, never run on its own.
# Every call that talks to another process goes through `timeout`, because a hung
# redis-cli in a start script or a probe stalls a pod with no log line saying why.
#
# Every path, port, name and timing comes from the environment, which the constructs set
# from lib/pod/contract.ts (the contract says which container gets which variable):
# POD_NAME, POD_NAMESPACE, CLUSTER_DOMAIN, MASTER_NAME, REDIS_PORT, SENTINEL_PORT,
# SENTINEL_SERVICE, AUTH_DIR (the auth Secret, one file per key), CLI_TIMEOUT (seconds per
# redis-cli call), TLS_CA_FILE (set only when Redis and Sentinel speak TLS only: see
# tls_flags), and ROLE_FILE (a
# Redis pod's last known role, "master" or "replica <host>", kept on its volume by the
# guard and the preStop hook, read by the start script).
#
# A decision is a function that prints one line, its verdict first and its reason last,
# and changes nothing; the code that acts on it is separate. The unit tests run every
# decision against one stand-in redis-cli (test/unit/support/).

# to_container_log: kubelet shows neither a probe's nor a hook's output, so send this
# script's log lines to the container's main process instead. (The unit tests set HOOK_LOG.)
to_container_log() {
  if [ -w "${HOOK_LOG:-/proc/1/fd/2}" ]; then exec 2>"${HOOK_LOG:-/proc/1/fd/2}"; fi
}

log() {
  echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') ${SCRIPT_NAME:-redis-ha}: $*" >&2
}

# fqdn NAME -> NAME.<namespace>.svc.<cluster domain>, the form every pod can resolve.
fqdn() {
  echo "$1.${POD_NAMESPACE}.svc.${CLUSTER_DOMAIN}"
}

# ---- Authentication. Redis and the Sentinels have one ACL user per kind of client and
# the default user off (rules: lib/pod/acl.ts, rendered into ACL_USERS_FILE as "<user>
# <rules>" per line). The auth Secret is mounted whole at AUTH_DIR: one file per key,
# "<user>-password", and during a rotation also "<user>-password-previous", the password
# being replaced, which the servers keep accepting until it is removed.

# secret_value KEY: the value of the Secret's key KEY; empty when the Secret has no such key.
secret_value() {
  cat "$AUTH_DIR/$1" 2>/dev/null || true
}

# password_hash PASSWORD: its SHA-256 in hex, as ACL "#<hash>" rules take it.
password_hash() {
  printf '%s' "$1" | sha256sum | cut -d ' ' -f 1
}

# require_plain_password PASSWORD KEY: client passwords are written into redis.conf and
# sentinel.conf inside double quotes, so a quote, backslash or newline would break (or
# inject) configuration. Refuse to start rather than run half-configured.
require_plain_password() {
  case "$1" in
    ""|*'"'*|*"\\"*|*"
"*)
      log "refusing to start: the value of key $2 in Secret $AUTH_SOURCE is empty or contains a quote, backslash or newline; store a plain token (for example: openssl rand -hex 32)"
      exit 1
      ;;
  esac
}

# tls_flags: the redis-cli options for the servers' transport, used by every redis-cli
# call. With TLS_CA_FILE set (the tls prop: Redis and Sentinel accept TLS only), TLS
# with the server's certificate checked against that CA; without it, none (plaintext).
tls_flags() {
  if [ -n "${TLS_CA_FILE:-}" ]; then echo "--tls --cacert ${TLS_CA_FILE:-}"; fi
}

# acl_users: the users of ACL_USERS_FILE, one per line.
acl_users() {
  awk 'NF { print $1 }' "$ACL_USERS_FILE"
}

# require_auth_keys: refuse to start, with one log line naming the Secret, the missing
# keys and the fix, unless the Secret holds a plain password for every user of
# ACL_USERS_FILE (and a plain previous one where it holds one). AUTH_KEYS lists every key
# of the Secret, for the command that creates it.
require_auth_keys() {
  _missing=""
  for _user in $(acl_users); do
    [ -s "$AUTH_DIR/$_user-password" ] || _missing="${_missing:+$_missing, }$_user-password"
  done
  if [ -n "$_missing" ]; then
    # shellcheck disable=SC2016
    _create="kubectl -n $POD_NAMESPACE create secret generic $AUTH_SOURCE$(for _key in $AUTH_KEYS; do printf ' --from-literal=%s=$(openssl rand -hex 32)' "$_key"; done)"
    if [ -e "$AUTH_DIR/password" ]; then
      log "refusing to start: Secret $AUTH_SOURCE is in the pre-ACL layout (one key, password); each user now has its own key ($(echo "$AUTH_KEYS" | sed 's/ /, /g')): add them, or recreate the Secret: $_create"
    else
      log "refusing to start: Secret $AUTH_SOURCE has no key $_missing; add it, or create the Secret with every key: $_create"
    fi
    exit 1
  fi
  for _user in $(acl_users); do
    require_plain_password "$(secret_value "$_user-password")" "$_user-password"
    if [ -e "$AUTH_DIR/$_user-password-previous" ]; then
      require_plain_password "$(secret_value "$_user-password-previous")" "$_user-password-previous"
    fi
  done
}

# acl_user_lines: "user default off", then one "user" line per line of ACL_USERS_FILE: on,
# the hash of the current password and, during a rotation, of the previous one (so a
# server that restarts mid-rotation accepts both, as the running ones do), and the rules.
acl_user_lines() {
  echo "user default off"
  while read -r _user _rules; do
    [ -n "$_user" ] || continue
    _hashes="#$(password_hash "$(secret_value "$_user-password")")"
    _previous="$(secret_value "$_user-password-previous")"
    [ -z "$_previous" ] || _hashes="$_hashes #$(password_hash "$_previous")"
    echo "user $_user on $_hashes $_rules"
  done < "$ACL_USERS_FILE"
}

# client_password USER: the password a starting server uses as USER towards its peers
# (masterauth, auth-pass, sentinel-pass). During a rotation that is the previous one,
# which every server accepts; a peer whose Secret files have not been updated yet may
# not know the new one. (The sidecars switch to the new one once every peer accepts it.)
client_password() {
  if [ -e "$AUTH_DIR/$1-password-previous" ]; then
    secret_value "$1-password-previous"
  else
    secret_value "$1-password"
  fi
}

# as_operations PORT HOST [ARGS...]: one command (without ARGS: the commands on stdin)
# as the operations user. The password travels in REDISCLI_AUTH, never on a command line
# (ps shows those). A server that refuses the current password (NOAUTH or WRONGPASS: it
# has not taken a rotated one yet) is asked once more with the previous one, when the
# Secret holds one. A server that refuses both is treated as one that does not answer
# (no output, status 1): its "NOAUTH" must not pass for a reply (a master's address, a
# role).
as_operations() {
  _ops_port="$1"
  _ops_host="$2"
  shift 2
  _ops_in=""
  [ $# -gt 0 ] || _ops_in="$(cat)"
  for _ops_key in operations-password operations-password-previous; do
    [ "$_ops_key" = operations-password ] || [ -e "$AUTH_DIR/$_ops_key" ] || break
    _ops_rc=0
    # shellcheck disable=SC2046
    _ops_reply="$(printf '%s\n' "$_ops_in" | REDISCLI_AUTH="$(secret_value "$_ops_key")" timeout "$CLI_TIMEOUT" \
      redis-cli $(tls_flags) --no-auth-warning --raw --user operations -h "$_ops_host" -p "$_ops_port" "$@" 2>/dev/null)" || _ops_rc=$?
    case "$_ops_reply" in
      NOAUTH*|WRONGPASS*) ;;
      *)
        [ -z "$_ops_reply" ] || printf '%s\n' "$_ops_reply"
        return "$_ops_rc"
        ;;
    esac
  done
  return 1
}

# redis_cmd HOST [ARGS...]: one command against a Redis server, as operations.
redis_cmd() {
  as_operations "$REDIS_PORT" "$@"
}

# sentinel_cmd HOST [ARGS...]: one command against a Sentinel, as operations.
sentinel_cmd() {
  as_operations "$SENTINEL_PORT" "$@"
}

# unauthenticated_ping PORT: the local server's answer to a PING without credentials.
# Liveness only asks whether the process answers: PONG, LOADING, MASTERDOWN and NOAUTH
# (it wants a password) all mean it does, so a password can never fail liveness.
unauthenticated_ping() {
  # shellcheck disable=SC2046
  timeout "$CLI_TIMEOUT" redis-cli $(tls_flags) --raw -h 127.0.0.1 -p "$1" PING 2>/dev/null || true
}

# refused_note PORT REPLY: for a readiness probe whose authenticated command got REPLY
# (empty: no answer), "; ..." saying that the local server refuses the operations user's
# password when that is why; nothing otherwise.
refused_note() {
  if [ -z "$2" ] && [ "$(unauthenticated_ping "$1")" = "NOAUTH Authentication required." ]; then
    echo "; the server answers but refuses the operations user's password (Secret $AUTH_SOURCE, key operations-password)"
  fi
}

# alive_reply REPLY: true when REPLY comes from a server process that answers.
alive_reply() {
  case "$1" in
    PONG|LOADING*|MASTERDOWN*|NOAUTH*) return 0 ;;
    *) return 1 ;;
  esac
}

# sentinel_addresses: the IPs of all Sentinel pods, from the headless Service.
sentinel_addresses() {
  timeout "$CLI_TIMEOUT" getent ahostsv4 "$(fqdn "$SENTINEL_SERVICE")" 2>/dev/null \
    | awk '{ print $1 }' | sort -u
}

# sentinel_view HOST: "<config-epoch> <master host> <master port> <flags>" as that Sentinel
# sees the monitored master, or nothing when it does not answer or does not know it.
sentinel_view() {
  sentinel_cmd "$1" SENTINEL MASTER "$MASTER_NAME" | awk '
    NR % 2 == 1 { key = $0; next }
    { value[key] = $0 }
    END { if (value["ip"] != "") print value["config-epoch"], value["ip"], value["port"], value["flags"] }'
}

# sentinel_views [EXCLUDE_IP]: "<config-epoch> <master host> <master port> <flags> <sentinel>"
# from every Sentinel that answers and knows the master.
sentinel_views() {
  for _addr in $(sentinel_addresses); do
    [ "$_addr" = "${1:-}" ] && continue
    _view="$(sentinel_view "$_addr")"
    [ -n "$_view" ] && echo "$_view $_addr"
  done
}

# newest_sentinel_view < sentinel_views: which Sentinel's view wins, as "<config-epoch>
# <master host> <master port> <flags> <reason>"; nothing when no Sentinel knows the master.
# The highest config epoch wins: right after a failover, Sentinels other than the leader
# report the old master for a few seconds, so a single Sentinel's answer can be stale.
# Sentinels that name different masters at the same (newest) epoch have not failed over
# since they started apart (after every pod restarted): the master most of them name wins,
# then the first host name in sort order, so every pod that asks gets the same answer
# whatever order the Sentinels answer in.
newest_sentinel_view() {
  awk '
    { n++; line[n] = $0; if (n == 1 || $1 + 0 > epoch) epoch = $1 + 0 }
    END {
      if (!n) exit
      for (i = 1; i <= n; i++) {
        split(line[i], f, " ")
        if (f[1] + 0 != epoch) continue
        if (!(f[2] in votes)) { hosts++; first[f[2]] = i }
        votes[f[2]]++
      }
      best = ""
      for (h in votes) if (best == "" || votes[h] > votes[best] || (votes[h] == votes[best] && h < best)) best = h
      split(line[first[best]], f, " ")
      agree = 0
      for (i = 1; i <= n; i++) { split(line[i], g, " "); if (g[2] == best) agree++ }
      why = "Sentinel " f[5] " has the newest config epoch of the " n " that know the master (" agree " name " best ")"
      if (hosts > 1) why = why "; at that epoch " hosts " masters are named, this one by most Sentinels (then by name)"
      print epoch, best, f[3], f[4], why
    }'
}

# redis_role HOST: first line of ROLE ("master", "slave" or "sentinel"), empty if unreachable.
redis_role() {
  redis_cmd "$1" ROLE | head -n 1
}

# info_field HOST SECTION FIELD: one field of INFO, without the trailing CR.
info_field() {
  redis_cmd "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

# promotion_forecast < SENTINEL REPLICAS output: "<age-ms> <priority> <name>", where <name>
# is the replica that Sentinel would promote right now, <priority> its replica-priority as
# Sentinel last saw it, and <age-ms> how long ago that Sentinel last had INFO from it. Candidates and order as in Sentinel's own selection: replicas
# that are not down or disconnected and have a non-zero priority, by lowest
# slave-priority, then highest replication offset, then lowest run ID. Nothing when there
# is no candidate.
promotion_forecast() {
  awk '
    NR % 2 == 1 { key = $0; next }
    key == "name" { n++ }
    { v[n, key] = $0 }
    function better(a, b) {
      if (v[a, "slave-priority"] + 0 != v[b, "slave-priority"] + 0) return v[a, "slave-priority"] + 0 < v[b, "slave-priority"] + 0
      if (v[a, "slave-repl-offset"] + 0 != v[b, "slave-repl-offset"] + 0) return v[a, "slave-repl-offset"] + 0 > v[b, "slave-repl-offset"] + 0
      return tolower(v[a, "runid"]) < tolower(v[b, "runid"])
    }
    END {
      best = 0
      for (i = 1; i <= n; i++) {
        if (v[i, "flags"] != "slave" || v[i, "slave-priority"] + 0 == 0) continue
        if (!best || better(i, best)) best = i
      }
      if (best) print v[best, "info-refresh"] + 0, v[best, "slave-priority"] + 0, v[best, "name"]
    }'
}

# now_ms: milliseconds since the epoch. Prints nothing where date has no %N (busybox):
# callers then skip whatever needs sub-second timing.
now_ms() {
  _ns="$(date +%s%N)"
  case "$_ns" in
    *N|"") ;;
    *) echo $(( _ns / 1000000 )) ;;
  esac
}

# sleep_until_ms T: returns once now_ms has reached T (at once if it has).
sleep_until_ms() {
  _left=$(( $1 - $(now_ms) ))
  [ "$_left" -gt 0 ] || return 0
  sleep "$(( _left / 1000 )).$(printf '%03d' $(( _left % 1000 )))"
}

# Timing of a planned failover (Redis 7.0 src/sentinel.c). While a failover runs, Sentinel
# sends INFO to each replica at its first timer tick once the last INFO reply is more than
# SENTINEL_INFO_PERIOD_MS (one second) old, whatever SENTINEL DEBUG info-period says (the
# janitor sets that to the same period, so the cadence does not restart), and it learns that the
# replica became master only from that INFO. After SENTINEL FAILOVER it sends SLAVEOF NO
# ONE at the third timer tick (one state per tick), and in a tick it handles the master's
# failover before it sends INFO to the replicas. Ticks come every 50-100 ms (hz 10-19,
# drawn anew each tick). So the promotion is seen at the INFO that follows the request at
# once if that INFO is not sent before the second tick, that is, if the request reaches
# Sentinel at least two ticks (FAILOVER_LEAD_MS, with room for the request's own latency)
# before the INFO is due; otherwise a whole INFO period later. Both values come from the
# environment, derived together in lib/pod/contract.ts.

# failover_schedule NOW SAMPLED_AT AGE CATCHUP: "<pause-at> <request-at> <info-due>" (ms
# since the epoch). A Sentinel asked at SAMPLED_AT said its last INFO from the replica it
# will promote was AGE ms old, so its next INFO is due no earlier than SAMPLED_AT -
# AGE + SENTINEL_INFO_PERIOD_MS (the age was measured a little after SAMPLED_AT, which can only
# make it due later). The request goes FAILOVER_LEAD_MS before that, and writes pause
# CATCHUP ms before the request (the time the catch-up check takes). When that moment
# has already passed, the plan moves to the INFO after, one period later.
failover_schedule() {
  _due=$(( $2 - $3 + SENTINEL_INFO_PERIOD_MS ))
  while [ $(( _due - FAILOVER_LEAD_MS - $4 )) -lt "$1" ]; do
    _due=$(( _due + SENTINEL_INFO_PERIOD_MS ))
  done
  echo "$(( _due - FAILOVER_LEAD_MS - $4 )) $(( _due - FAILOVER_LEAD_MS )) $_due"
}

# ---- Shutdown gate (redis-prestop.sh). A Redis pod that is about to go down on purpose
# first announces it on its own server, as an ACL user named
# "redis-ha-leaving:<rank>:<ms since epoch>:<pod>" that can never log in (not in the
# keyspace, not replicated, gone when the server restarts), then reads every other Redis
# pod. It goes down only when, after announcing, no other pod has an announcement and
# every other pod is up and in sync: of two pods that announce at the same time, at least
# one sees the other's announcement. When it sees one, the announcement that comes first
# (lower rank: a replica before a master, so that the master hands over only once; then
# the earlier time; then the pod name) stays and the other is withdrawn.
GATE_MARKER_PREFIX=redis-ha-leaving

# redis_peers: the DNS names of every other Redis pod (REDIS_NODES lists them all).
redis_peers() {
  _me="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"
  for _pod in $REDIS_NODES; do
    [ "$(fqdn "$_pod")" = "$_me" ] || fqdn "$_pod"
  done
}

# gate_marker_precedes A B: true when announcement A goes before announcement B.
gate_marker_precedes() {
  echo "$1 $2" | awk '{
    split($1, a, ":"); split($2, b, ":")
    if (a[2] != b[2]) exit !(a[2] + 0 < b[2] + 0)
    if (a[3] != b[3]) exit !(a[3] + 0 < b[3] + 0)
    exit !(a[4] < b[4])
  }'
}

# sentinel_unhealthy_replica HOST=RUNID... < SENTINEL REPLICAS output: "<host> <why>" for
# the first of these replicas that this Sentinel does not see as a healthy replica that it
# could promote: flags exactly "slave", master link ok, and the run ID of the process
# running now (a Sentinel still holding the connection to a replica's previous process
# shows it healthy, with its old run ID, for seconds). Nothing when all are fine.
sentinel_unhealthy_replica() {
  awk -v want="$*" -v port="$REDIS_PORT" '
    NR % 2 == 1 { key = $0; next }
    key == "name" { name = $0 }
    { v[name, key] = $0; known[name] = 1 }
    END {
      n = split(want, w, " ")
      for (i = 1; i <= n; i++) {
        split(w[i], hr, "=")
        k = hr[1] ":" port
        if (!(k in known)) { print hr[1], "unknown"; exit }
        if (v[k, "flags"] != "slave" || v[k, "master-link-status"] != "ok") { print hr[1], v[k, "flags"] "/" v[k, "master-link-status"]; exit }
        if (v[k, "runid"] != hr[2]) { print hr[1], "no INFO from its current process"; exit }
      }
    }'
}

# shutdown_gate_verdict [MY_ANNOUNCEMENT]: "<go|wait|withdraw> <reason>". withdraw: another
# pod's announcement goes before this one's. wait: another pod is going down (or announced
# after this one, and will withdraw), does not answer or is not in sync; there is not
# exactly one master; or fewer than SENTINEL_QUORUM Sentinels answer, or one of them names
# another master, runs a failover, or does not see every other pod as a healthy replica
# (the failover that this pod's absence may need must find one). go: none of these.
shutdown_gate_verdict() {
  _mine="${1:-}"
  _withdraw=""
  _wait=""
  _masters=0
  _master=""
  _replicas=""
  if [ "$(redis_role 127.0.0.1)" = "master" ]; then
    _masters=1
    _master="$(fqdn "$POD_NAME.$GOVERNING_SERVICE")"
  fi
  for _peer in $(redis_peers); do
    _name="${_peer%%.*}"
    _pong="$(redis_cmd "$_peer" PING || true)"
    if [ "$_pong" != "PONG" ]; then
      _wait="${_wait:-$_name is not up (PING answered ${_pong:-nothing})}"
      continue
    fi
    for _marker in $(redis_cmd "$_peer" ACL USERS | grep "^$GATE_MARKER_PREFIX:" || true); do
      if [ -z "$_mine" ]; then
        _wait="${_wait:-$_name is going down ($_marker)}"
      elif gate_marker_precedes "$_marker" "$_mine"; then
        _withdraw="${_withdraw:-$_name announced its shutdown first ($_marker)}"
      else
        _wait="${_wait:-$_name announced its shutdown after this pod ($_marker) and will withdraw}"
      fi
    done
    # shellcheck disable=SC2046
    set -- $(redis_cmd "$_peer" INFO replication | tr -d '\r' | awk -F: '
      $1 == "role" { role = $2 } $1 == "master_link_status" { link = $2 } $1 == "master_sync_in_progress" { sync = $2 }
      END { print (role == "" ? "unknown" : role), (link == "" ? "-" : link), (sync == "" ? "-" : sync) }')
    case "$1 $2 $3" in
      "master "*)
        _masters=$(( _masters + 1 ))
        _master="$_peer"
        ;;
      "slave up 0") _replicas="$_replicas $_peer=$(info_field "$_peer" server run_id)" ;;
      "slave "*) _wait="${_wait:-$_name is a replica that is not in sync (link $2, sync in progress $3)}" ;;
      *) _wait="${_wait:-$_name does not report its replication role}" ;;
    esac
  done
  if [ -z "$_withdraw" ] && [ -z "$_wait" ] && [ "$_masters" -eq 1 ]; then
    _answered=0
    for _addr in $(sentinel_addresses); do
      _view="$(sentinel_view "$_addr")"
      [ -n "$_view" ] || continue
      _answered=$(( _answered + 1 ))
      # shellcheck disable=SC2086
      set -- $_view
      if [ "$2" != "$_master" ] || [ "$4" != "master" ]; then
        _wait="${_wait:-Sentinel $_addr names ${2%%.*} master (flags $4) while ${_master%%.*} answers as master}"
        continue
      fi
      # shellcheck disable=SC2046,SC2086
      set -- $(sentinel_cmd "$_addr" SENTINEL REPLICAS "$MASTER_NAME" | sentinel_unhealthy_replica $_replicas)
      [ $# -eq 0 ] || _wait="${_wait:-Sentinel $_addr does not see ${1%%.*} as a healthy replica yet ($(shift; echo "$*"))}"
    done
    [ "$_answered" -ge "$SENTINEL_QUORUM" ] || _wait="${_wait:-only $_answered Sentinels answer, fewer than the quorum of $SENTINEL_QUORUM}"
  fi
  if [ -n "$_withdraw" ]; then
    echo "withdraw $_withdraw"
  elif [ -n "$_wait" ]; then
    echo "wait $_wait"
  elif [ "$_masters" -ne 1 ]; then
    echo "wait $_masters Redis pods answer as master, not one"
  else
    echo "go every other Redis pod is up and in sync, the Sentinels see them so, and none is going down"
  fi
}

# ensure_sentinel_timings HOST: apply SENTINEL_TIMINGS ("param value ...") with SENTINEL
# DEBUG when that Sentinel reports other values, as it does after every start.
ensure_sentinel_timings() {
  [ -n "${SENTINEL_TIMINGS:-}" ] || return 0
  _host="$1"
  _current=" $(sentinel_cmd "$_host" SENTINEL DEBUG | tr '\n' ' ' | tr '[:upper:]' '[:lower:]')"
  [ "$_current" != " " ] || return 0
  # shellcheck disable=SC2086
  set -- $SENTINEL_TIMINGS
  while [ $# -ge 2 ]; do
    case "$_current" in
      *" $1 $2 "*) shift 2 ;;
      *)
        # shellcheck disable=SC2086
        _reply="$(sentinel_cmd "$_host" SENTINEL DEBUG $SENTINEL_TIMINGS || true)"
        if [ "$_reply" = "OK" ]; then
          log "set Sentinel timings on $_host: $SENTINEL_TIMINGS"
        elif [ -z "${TIMINGS_REFUSED:-}" ]; then
          # Redis before 7.0 has no SENTINEL DEBUG: it still works, with the default periods.
          log "Sentinel $_host refused 'SENTINEL DEBUG $SENTINEL_TIMINGS': '$_reply'; failovers will take up to a second longer"
          TIMINGS_REFUSED=1
        fi
        return 0
        ;;
    esac
  done
}
