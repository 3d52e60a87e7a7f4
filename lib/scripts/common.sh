#!/bin/sh
# Shared functions for the scripts in this directory; sourced, never run on its own.
# Every call that talks to another process goes through `timeout`, because a hung
# redis-cli in a start script or a probe stalls a pod with no log line saying why.
#
# Environment (set by the manifests): POD_NAME, POD_NAMESPACE, CLUSTER_DOMAIN,
# MASTER_NAME, REDIS_PORT, SENTINEL_PORT, SENTINEL_SERVICE, AUTH_FILE.

CLI_TIMEOUT="${CLI_TIMEOUT:-2}"
# A Redis pod's last known role ("master" or "replica <host>"), kept on its volume by the
# readiness probe and the preStop hook, read by the start script. (The unit tests set it.)
ROLE_FILE="${ROLE_FILE:-/data/redis-ha-role}"

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

redis_password() {
  cat "$AUTH_FILE"
}

# require_plain_password PASSWORD: the password is written into redis.conf and
# sentinel.conf inside double quotes, so a quote, backslash or newline would break
# (or inject) configuration. Refuse to start rather than run half-configured.
require_plain_password() {
  case "$1" in
    ""|*'"'*|*"\\"*|*"
"*)
      log "refusing to start: the password in $AUTH_FILE is empty or contains a quote, backslash or newline; store a plain token (for example: openssl rand -hex 32)"
      exit 1
      ;;
  esac
}

# redis_cmd HOST ARGS... : one command against a Redis server, authenticated.
redis_cmd() {
  _host="$1"
  shift
  REDISCLI_AUTH="$(redis_password)" timeout "$CLI_TIMEOUT" \
    redis-cli --no-auth-warning --raw -h "$_host" -p "$REDIS_PORT" "$@" 2>/dev/null
}

# sentinel_cmd HOST ARGS... : one command against a Sentinel (Sentinels run without a password).
sentinel_cmd() {
  _host="$1"
  shift
  timeout "$CLI_TIMEOUT" redis-cli --raw -h "$_host" -p "$SENTINEL_PORT" "$@" 2>/dev/null
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

# newest_sentinel_view [EXCLUDE_IP]: ask every Sentinel and keep the answer with the
# highest config epoch. Right after a failover, Sentinels other than the leader report
# the old master for a few seconds, so a single Sentinel's answer can be stale.
newest_sentinel_view() {
  for _addr in $(sentinel_addresses); do
    [ "$_addr" = "${1:-}" ] && continue
    _view="$(sentinel_view "$_addr")"
    [ -n "$_view" ] && echo "$_view"
  done | sort -n -r -k 1,1 | head -n 1
}

# redis_role HOST: first line of ROLE ("master", "slave" or "sentinel"), empty if unreachable.
redis_role() {
  redis_cmd "$1" ROLE | head -n 1
}

# info_field HOST SECTION FIELD: one field of INFO, without the trailing CR.
info_field() {
  redis_cmd "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

# promotion_forecast < SENTINEL REPLICAS output: "<age-ms> <oldest-age-ms> <name>", where
# <name> is the replica that Sentinel would promote right now and <age-ms> how long ago
# that Sentinel last had INFO from it; <oldest-age-ms> is the largest such age among all
# candidates. Candidates and order as in Sentinel's own selection: replicas that are not
# down or disconnected and have a non-zero priority, by lowest slave-priority, then
# highest replication offset, then lowest run ID. Nothing when there is no candidate.
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
      best = 0; oldest = 0
      for (i = 1; i <= n; i++) {
        if (v[i, "flags"] != "slave" || v[i, "slave-priority"] + 0 == 0) continue
        if (v[i, "info-refresh"] + 0 > oldest) oldest = v[i, "info-refresh"] + 0
        if (!best || better(i, best)) best = i
      }
      if (best) print v[best, "info-refresh"] + 0, oldest, v[best, "name"]
    }'
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
