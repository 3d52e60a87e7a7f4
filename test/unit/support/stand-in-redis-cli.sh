#!/bin/sh
# Stand-in for redis-cli in the unit tests: every Redis server and Sentinel of a described
# world (test/unit/support/world.ts) in one script. The world directory holds, per server,
# hosts/<host>:<port>/ with one reply file per command (its words joined by "_", e.g.
# INFO_replication, SENTINEL_MASTER_mymaster); a file ending in ".sh" is sourced instead,
# for replies that depend on earlier commands. A server without a directory does not
# answer (connection refused). Like the real servers it keeps ACL users, CONFIG SET values
# and SENTINEL DEBUG periods, and answers OK to the commands that only act (REPLICAOF,
# CLIENT ..., SENTINEL RESET/FAILOVER); any other command without a reply file is an error,
# so a test never passes on a reply it did not describe. Every command is recorded in
# <world>/calls as "<host> <command>", and in <world>/auth-calls as "<host> <user>
# <command>" (user "-" when it did not log in). STANDIN_SELF is the host that 127.0.0.1
# stands for.
# Authentication as in Redis with the default user off: a server's <dir>/users lists
# "<user> <password>" pairs it accepts; --user NAME with REDISCLI_AUTH logs in (or prints
# "AUTH failed: WRONGPASS ..." on stderr, as redis-cli does, and goes on unauthenticated),
# and every command of a client that has not logged in is answered NOAUTH.
world="$(cd "$(dirname "$0")/.." && pwd)"
host=127.0.0.1
port=6379
user=default
while [ $# -gt 0 ]; do
  case "$1" in
    -h) host="$2"; shift 2 ;;
    -p) port="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --raw|--no-auth-warning) shift ;;
    *) break ;;
  esac
done
[ "$host" = 127.0.0.1 ] && [ -n "${STANDIN_SELF:-}" ] && host="$STANDIN_SELF"
d="$world/hosts/$host:$port"

logged_in=""
answer() {
  echo "$host $*" >> "$world/calls"
  if [ ! -d "$d" ]; then
    echo "Could not connect to Redis at $host:$port: Connection refused" >&2
    return 1
  fi
  if [ -z "$logged_in" ]; then
    logged_in=-
    if [ -n "${REDISCLI_AUTH:-}" ]; then
      if grep -q -x -F "$user $REDISCLI_AUTH" "$d/users" 2>/dev/null; then
        logged_in="$user"
      else
        echo "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." >&2
      fi
    fi
  fi
  echo "$host $logged_in $*" >> "$world/auth-calls"
  if [ "$logged_in" = - ]; then
    printf 'NOAUTH Authentication required.\n\n'
    return 0
  fi
  case "$1 ${2:-}" in
    "ACL SETUSER") echo "$3" >> "$d/acl-users"; echo OK; return 0 ;;
    "ACL DELUSER")
      { grep -v -x -F "$3" "$d/acl-users" || true; } > "$d/acl-users.new"
      mv "$d/acl-users.new" "$d/acl-users"
      echo 1
      return 0
      ;;
    "ACL USERS") echo default; cat "$d/acl-users" 2>/dev/null; return 0 ;;
    "CONFIG SET") printf '%s\n%s\n' "$3" "$4" > "$d/CONFIG_GET_$3"; echo OK; return 0 ;;
    "SENTINEL DEBUG")
      if [ $# -eq 2 ]; then cat "$d/SENTINEL_DEBUG"; return 0; fi
      if [ -e "$d/debug-refused" ]; then cat "$d/debug-refused"; return 0; fi
      shift 2
      while [ $# -ge 2 ]; do
        _key="$(echo "$1" | tr '[:lower:]' '[:upper:]')"
        awk -v k="$_key" -v v="$2" 'prev == k { print v; prev = ""; next } { print; prev = $0 }' "$d/SENTINEL_DEBUG" > "$d/SENTINEL_DEBUG.new"
        mv "$d/SENTINEL_DEBUG.new" "$d/SENTINEL_DEBUG"
        shift 2
      done
      echo OK
      return 0
      ;;
  esac
  key="$(echo "$*" | tr ' ' '_')"
  if [ -f "$d/$key.sh" ]; then
    # shellcheck disable=SC1090
    . "$d/$key.sh"
  elif [ -f "$d/$key" ]; then
    cat "$d/$key"
  else
    case "$1 ${2:-}" in
      "REPLICAOF "*|"CLIENT "*|"SENTINEL RESET"|"SENTINEL FAILOVER") echo OK ;;
      *) echo "ERR the stand-in has no reply to '$*' from $host:$port"; return 1 ;;
    esac
  fi
}

if [ $# -gt 0 ]; then
  answer "$@"
  exit
fi
# No command: one per line on stdin, as redis-cli does.
while read -r line; do
  # shellcheck disable=SC2086
  answer $line || exit 1
done
