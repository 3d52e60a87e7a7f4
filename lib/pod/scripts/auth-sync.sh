#!/bin/sh
# Password rotation without a restart; sourced by the guard (redis-guard.sh) and the janitor
# (sentinel-janitor.sh), which call auth_sync_if_due in their loop. An operator (or
# `redis-ha rotate-passwords`) starts a rotation with one Secret edit: <user>-password =
# NEW and <user>-password-previous = OLD. The kubelet rewrites the mounted files (each
# pod at its own moment, up to a minute or two apart), and every AUTH_SYNC_SECONDS
# auth_sync:
#   1. server side: makes the ACL passwords of each user of the local server (those of
#      ACL_USERS_FILE) exactly {sha256(current), sha256(previous)} (ACL SETUSER #h / !h), so
#      both are accepted during the rotation and the old one is refused once -previous is
#      gone;
#   2. client side: moves each credential this pod holds as a client (Redis: masterauth;
#      Sentinel: auth-pass towards Redis, sentinel-pass towards the other Sentinels) to the
#      current password only once every peer it is used against accepts it, and keeps the
#      previous one until then (a peer whose kubelet is late still knows only OLD);
#   3. writes AUTH_STATUS_FILE, one line per user, "<user> accepted <h>,<h> using <h>|-"
#      (16-digit sha256 prefixes, sorted; never a password), which the rotation tool waits on
#      before it removes the -previous keys.
# Passwords never go on a command line: REDISCLI_AUTH, or redis-cli's stdin for CONFIG SET
# and SENTINEL SET.
#
# The sourcing script sets AUTH_SERVER ("redis" or "sentinel": the server beside it) and
# passes auth_sync its client step (sync_masterauth or sync_sentinel_passwords) and the
# user that step is for. Environment: AUTH_DIR, ACL_USERS_FILE, AUTH_STATUS_FILE,
# AUTH_SYNC_SECONDS; the guard's client step also reads GOVERNING_SERVICE and REDIS_NODES
# (its peers), the janitor's REDIS_NODES, SENTINEL_SERVICE and SENTINEL_CONFIG (Sentinel
# keeps auth-pass only in its config file).

# auth_file KEY: the Secret's value, read through the kubelet's ..data link when there is
# one. Current is read before previous: a Secret update switches ..data first and creates
# the link of a new key just after, so reading "<key>-previous" by its own link could miss
# the previous password of a current one already read, and drop a password still in use.
auth_file() {
  if [ -d "$AUTH_DIR/..data" ]; then
    # Read again when the file is not found: a read resolved through ..data into the version
    # the kubelet removes right after a switch finds it gone, and would take a password that
    # is in the Secret for one that is not (and refuse it for a round).
    cat "$AUTH_DIR/..data/$1" 2>/dev/null || cat "$AUTH_DIR/..data/$1" 2>/dev/null || true
  else
    secret_value "$1"
  fi
}

# short_hash HASH: the prefix the status file and the log lines show.
short_hash() {
  echo "$1" | cut -c1-16
}

# comma_list: the lines of stdin joined with commas.
comma_list() {
  tr '\n' ',' | sed 's/,$//'
}

# acl_getuser USER / acl_setuser USER RULE: on the pod's own server, as operations.
acl_getuser() {
  if [ "$AUTH_SERVER" = redis ]; then redis_cmd 127.0.0.1 ACL GETUSER "$1"; else sentinel_cmd 127.0.0.1 ACL GETUSER "$1"; fi
}
acl_setuser() {
  if [ "$AUTH_SERVER" = redis ]; then redis_cmd 127.0.0.1 ACL SETUSER "$1" "$2"; else sentinel_cmd 127.0.0.1 ACL SETUSER "$1" "$2"; fi
}

# acl_hashes USER: "ok", then the password hashes the local server holds for USER, one per
# line; nothing when the server does not answer or has no such user.
acl_hashes() {
  { acl_getuser "$1" || true; } | awk '
    $0 == "flags" { known = 1 }
    $0 == "passwords" { inside = 1; next }
    inside && length($0) == 64 && $0 ~ /^[0-9a-f]+$/ { hashes = hashes $0 "\n"; next }
    inside { inside = 0 }
    END { if (known) printf "ok\n%s", hashes }'
}

# decide_acl_changes CURRENT_HASH PREVIOUS_HASH HELD_HASH...: what makes the server hold
# exactly current and previous: "add <hash> <current|previous>" and "remove <hash>" lines;
# nothing when it does. Nothing at all when CURRENT_HASH is empty (the Secret could not be
# read): a user must never lose every password.
decide_acl_changes() {
  _cur="$1"
  _prev="$2"
  shift 2
  [ -n "$_cur" ] || return 0
  case " $* " in *" $_cur "*) ;; *) echo "add $_cur current" ;; esac
  if [ -n "$_prev" ] && [ "$_prev" != "$_cur" ]; then
    case " $* " in *" $_prev "*) ;; *) echo "add $_prev previous" ;; esac
  fi
  for _held in "$@"; do
    [ "$_held" = "$_cur" ] || [ "$_held" = "$_prev" ] || echo "remove $_held"
  done
}

# decide_client_password CURRENT PREVIOUS REFUSING_PEER: "<current|previous> <reason>": the
# current password when there is no other or no peer refuses it (REFUSING_PEER empty), the
# previous one while a peer does not accept the current one yet.
decide_client_password() {
  if [ -z "$2" ] || [ "$2" = "$1" ]; then
    echo "current no rotation is under way"
  elif [ -z "$3" ]; then
    echo "current every peer accepts it"
  else
    echo "previous $3 does not accept the current one yet"
  fi
}

# accepts HOST PORT USER PASSWORD: true when the server at HOST:PORT takes USER/PASSWORD.
accepts() {
  # shellcheck disable=SC2046
  [ "$(REDISCLI_AUTH="$4" timeout "$CLI_TIMEOUT" redis-cli $(tls_flags) --no-auth-warning --raw --user "$3" -h "$1" -p "$2" PING 2>/dev/null)" = PONG ]
}

# first_refusing PORT USER PASSWORD HOST...: the first HOST (short name) that does not take
# USER/PASSWORD; nothing when every one does. A host that does not answer refuses.
first_refusing() {
  _port="$1"
  _user="$2"
  _pw="$3"
  shift 3
  for _h in "$@"; do
    accepts "$_h" "$_port" "$_user" "$_pw" || { echo "${_h%%.*}"; return 0; }
  done
}

# sync_server_user USER: step 1 for one user; prints the hash prefixes the server holds
# afterwards (comma-separated), "?" when it did not answer.
sync_server_user() {
  _user="$1"
  _cur="$(auth_file "$_user-password")"
  _prev="$(auth_file "$_user-password-previous")"
  _held="$(acl_hashes "$_user")"
  if [ "$(echo "$_held" | head -n 1)" != ok ]; then
    echo "?"
    return 0
  fi
  _ch="$([ -z "$_cur" ] || password_hash "$_cur")"
  _ph="$([ -z "$_prev" ] || password_hash "$_prev")"
  # shellcheck disable=SC2046
  decide_acl_changes "$_ch" "$_ph" $(echo "$_held" | sed 1d) | while read -r _action _hash _which; do
    if [ "$_action" = add ]; then
      [ "$(acl_setuser "$_user" "#$_hash" || true)" = OK ] &&
        log "user $_user: accepting its $_which password ($(short_hash "$_hash")) from the Secret"
    else
      [ "$(acl_setuser "$_user" "!$_hash" || true)" = OK ] &&
        log "user $_user: refusing password $(short_hash "$_hash") from now on (no longer in the Secret)"
    fi
  done
  _held="$(acl_hashes "$_user")"
  if [ "$(echo "$_held" | head -n 1)" = ok ]; then
    echo "$_held" | sed 1d | while read -r _h; do short_hash "$_h"; done | sort | comma_list
  else
    echo "?"
  fi
}

# choose_client_password USER PORT PEER...: step 2's decision for a credential of USER used
# against the PEERs (at PORT): sets CHOSEN (the password) and CHOSEN_REASON.
choose_client_password() {
  _user="$1"
  _port="$2"
  shift 2
  _cur="$(auth_file "$_user-password")"
  _prev="$(auth_file "$_user-password-previous")"
  _refusing=""
  if [ -n "$_prev" ] && [ "$_prev" != "$_cur" ]; then
    _refusing="$(first_refusing "$_port" "$_user" "$_cur" "$@")"
  fi
  read -r _which _reason <<EOF
$(decide_client_password "$_cur" "$_prev" "$_refusing")
EOF
  if [ "$_which" = current ]; then CHOSEN="$_cur"; else CHOSEN="$_prev"; fi
  CHOSEN_REASON="$_which $_user password because $_reason"
}

# sync_masterauth: step 2 on a Redis pod, the replication password towards the master
# (any other Redis pod may become it); prints the hash prefix of the one in use.
sync_masterauth() {
  # shellcheck disable=SC2046
  choose_client_password replication "$REDIS_PORT" $(redis_peers)
  # Only a server that answers is changed (its CONFIG GET reply names the parameter).
  _got="$(redis_cmd 127.0.0.1 CONFIG GET masterauth || true)"
  _now="$(echo "$_got" | sed -n 2p)"
  if [ "$(echo "$_got" | head -n 1)" = masterauth ] && [ -n "$CHOSEN" ] && [ "$_now" != "$CHOSEN" ] &&
    [ "$(printf 'CONFIG SET masterauth %s\n' "$CHOSEN" | redis_cmd 127.0.0.1 || true)" = OK ]; then
    log "masterauth: now the $CHOSEN_REASON"
    _now="$CHOSEN"
  fi
  [ -z "$_now" ] || short_hash "$(password_hash "$_now")"
}

# sentinel_auth_pass: the auth-pass this Sentinel uses towards Redis (its config file,
# which Sentinel rewrites on every change; the start script wrote it in quotes).
sentinel_auth_pass() {
  awk -v m="$MASTER_NAME" '$1 == "sentinel" && $2 == "auth-pass" && $3 == m { v = $4; gsub(/"/, "", v); print v }' "$SENTINEL_CONFIG" 2>/dev/null || true
}

# sync_sentinel_passwords: step 2 on a Sentinel pod, the sentinel password as auth-pass
# (towards every Redis pod) and as sentinel-pass (towards every Sentinel); prints the hash
# prefixes of those in use.
sync_sentinel_passwords() {
  # shellcheck disable=SC2046
  choose_client_password sentinel "$REDIS_PORT" $(for _pod in $REDIS_NODES; do fqdn "$_pod"; done)
  _auth="$(sentinel_auth_pass)"
  if [ -n "$CHOSEN" ] && [ "$_auth" != "$CHOSEN" ] &&
    [ "$(printf 'SENTINEL SET %s auth-pass %s\n' "$MASTER_NAME" "$CHOSEN" | sentinel_cmd 127.0.0.1 || true)" = OK ]; then
    log "auth-pass: now the $CHOSEN_REASON"
    _auth="$CHOSEN"
  fi
  # shellcheck disable=SC2046
  choose_client_password sentinel "$SENTINEL_PORT" $(sentinel_addresses)
  _got="$(sentinel_cmd 127.0.0.1 SENTINEL CONFIG GET sentinel-pass || true)"
  _spass="$(echo "$_got" | sed -n 2p)"
  if [ "$(echo "$_got" | head -n 1)" = sentinel-pass ] && [ -n "$CHOSEN" ] && [ "$_spass" != "$CHOSEN" ] &&
    [ "$(printf 'SENTINEL CONFIG SET sentinel-pass %s\n' "$CHOSEN" | sentinel_cmd 127.0.0.1 || true)" = OK ]; then
    log "sentinel-pass: now the $CHOSEN_REASON"
    _spass="$CHOSEN"
  fi
  for _pw in "$_auth" "$_spass"; do
    [ -z "$_pw" ] || short_hash "$(password_hash "$_pw")"
  done | sort -u | comma_list
}

# auth_sync CLIENT_STEP CLIENT_USER: steps 1 to 3 (see the top of this file); CLIENT_STEP
# handles this pod's client credentials of CLIENT_USER.
auth_sync() {
  _status=""
  for _u in $(acl_users); do
    _accepted="$(sync_server_user "$_u")"
    _using="-"
    if [ "$_u" = "$2" ]; then
      _using="$("$1")"
    elif [ "$_u" = operations ]; then
      # The scripts log in with the current password first (as_operations).
      _op="$(auth_file operations-password)"
      [ -z "$_op" ] || _using="$(short_hash "$(password_hash "$_op")")"
    fi
    _status="$_status$_u accepted ${_accepted:-?} using ${_using:--}
"
  done
  printf '%s' "$_status" > "$AUTH_STATUS_FILE.tmp" && mv "$AUTH_STATUS_FILE.tmp" "$AUTH_STATUS_FILE"
}

# auth_sync_if_due CLIENT_STEP CLIENT_USER: auth_sync every AUTH_SYNC_SECONDS (the loops
# that call it run more often), in the background: a peer that does not answer costs
# CLI_TIMEOUT, and the guard's fence checks must not wait for it. One at a time.
AUTH_SYNC_NEXT=0
AUTH_SYNC_PID=""
auth_sync_if_due() {
  _t="$(date +%s)"
  [ "$_t" -ge "$AUTH_SYNC_NEXT" ] || return 0
  if [ -n "$AUTH_SYNC_PID" ] && kill -0 "$AUTH_SYNC_PID" 2>/dev/null; then return 0; fi
  AUTH_SYNC_NEXT=$(( _t + AUTH_SYNC_SECONDS ))
  { auth_sync "$1" "$2" || log "password sync failed; trying again in ${AUTH_SYNC_SECONDS}s"; } &
  AUTH_SYNC_PID=$!
}
