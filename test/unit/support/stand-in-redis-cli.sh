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
# "<user> <password>" pairs it accepts (or "<user> #<sha256>", as ACL SETUSER adds them); --user NAME with REDISCLI_AUTH logs in (or prints
# "AUTH failed: WRONGPASS ..." on stderr, as redis-cli does, and goes on unauthenticated),
# and every command of a client that has not logged in is answered NOAUTH.
world="$(cd "$(dirname "$0")/.." && pwd)"
# A world with a file tls-ca (TLS only, as with the tls prop) refuses every call that does
# not use --tls with --cacert naming that file; a world without it refuses --tls.
host=127.0.0.1
port=6379
tls=""
cacert=""
user=default
while [ $# -gt 0 ]; do
  case "$1" in
    -h) host="$2"; shift 2 ;;
    -p) port="$2"; shift 2 ;;
    --cacert) cacert="$2"; shift 2 ;;
    --tls) tls=1; shift ;;
    --user) user="$2"; shift 2 ;;
    --raw|--no-auth-warning) shift ;;
    *) break ;;
  esac
done
[ "$host" = 127.0.0.1 ] && [ -n "${STANDIN_SELF:-}" ] && host="$STANDIN_SELF"
d="$world/hosts/$host:$port"
if [ -e "$world/tls-ca" ]; then
  if [ -z "$tls" ] || [ "$cacert" != "$(cat "$world/tls-ca")" ]; then
    echo "$host plaintext-refused $*" >> "$world/calls"
    echo "Error: Connection reset by peer (tls ${tls:-off}, cacert ${cacert:-none})" >&2
    exit 1
  fi
elif [ -n "$tls" ]; then
  echo "Could not connect to Redis at $host:$port: SSL_connect failed: wrong version number" >&2
  exit 1
fi

logged_in=""
sha256() {
  printf '%s' "$1" | sha256sum | cut -d ' ' -f 1
}

# user_hashes USER: the sha256 of each password USER has (a users line holds a password or "#<sha256>").
user_hashes() {
  while read -r _u _p; do
    [ "$_u" = "$1" ] || continue
    case "$_p" in "#"*) echo "${_p#\#}" ;; *) sha256 "$_p" ;; esac
  done < "$d/users"
}

answer() {
  echo "$host $*" >> "$world/calls"
  if [ ! -d "$d" ]; then
    echo "Could not connect to Redis at $host:$port: Connection refused" >&2
    return 1
  fi
  if [ -z "$logged_in" ]; then
    logged_in=-
    if [ -n "${REDISCLI_AUTH:-}" ]; then
      if grep -q -x -F -e "$user $REDISCLI_AUTH" -e "$user #$(sha256 "$REDISCLI_AUTH")" "$d/users" 2>/dev/null; then
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
  case "$1 ${2:-} ${4:-}" in
    # Passwords of a user: ACL GETUSER lists their hashes, SETUSER #<hash> adds one, !<hash> removes it.
    "ACL SETUSER #"*) grep -q -x -F "$3 $4" "$d/users" || echo "$3 $4" >> "$d/users"; echo OK; return 0 ;;
    "ACL SETUSER !"*)
      _gone="${4#!}"
      while read -r _u _p; do
        if [ "$_u" = "$3" ] && { [ "$_p" = "#$_gone" ] || [ "$(sha256 "$_p")" = "$_gone" ]; }; then continue; fi
        echo "$_u $_p"
      done < "$d/users" > "$d/users.new"
      mv "$d/users.new" "$d/users"
      echo OK
      return 0
      ;;
  esac
  case "$1 ${2:-}" in
    "ACL GETUSER")
      if ! grep -q "^$3 " "$d/users"; then echo; return 0; fi
      printf 'flags\non\npasswords\n'
      user_hashes "$3"
      printf 'commands\n-@all\nkeys\n\nchannels\n\nselectors\n'
      return 0
      ;;
    # Sentinel keeps auth-pass in its config file (SENTINEL_CONFIG of the janitor's environment).
    "SENTINEL SET")
      if [ "$4" = auth-pass ] && [ -n "${SENTINEL_CONFIG:-}" ]; then
        { grep -v "^sentinel auth-pass $3 " "$SENTINEL_CONFIG" 2>/dev/null || true; echo "sentinel auth-pass $3 $5"; } > "$SENTINEL_CONFIG.new"
        mv "$SENTINEL_CONFIG.new" "$SENTINEL_CONFIG"
      fi
      echo OK
      return 0
      ;;
    "SENTINEL CONFIG") if [ "$3" = SET ]; then printf '%s\n%s\n' "$4" "$5" > "$d/SENTINEL_CONFIG_GET_$4"; echo OK; return 0; fi ;;
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
