#!/bin/sh
# Decisions of a Redis pod, sourced by redis-start.sh (how to start) and redis-guard.sh
# (when to fence or demote a running master); never run on its own. Each decision is a
# function that prints a verdict and its reason and changes nothing, so the unit tests
# can run it against a stand-in redis-cli.
#
# The rule behind all of them: data decides, not names. Role records and what the
# Sentinels say are hints; which node holds keys is a fact. A node whose volume holds no
# data never becomes master while another node has data or might have (it does not
# answer), and a node with data never follows an empty master from another history.
#
# Environment (from lib/pod/contract.ts): DATA_DIR, STATE_FILE (facts about this pod's own
# data, written by the guard while Redis runs, read at start), ALLOW_EMPTY_FILE (an
# operator creates it to let a node with an empty volume start as master although no node
# with data answers: a deliberate reset, see the README), REDIS_NODES (short DNS names of
# every Redis pod), BOOTSTRAP_MASTER, FAILOVER_WAIT_SECONDS, POD_IP, SENTINEL_COUNT,
# SENTINEL_QUORUM, FENCE_PROBE_TIMEOUT, FENCE_AFTER_ROUNDS, PRIORITY_RESTORE_AFTER_SECONDS;
# ME (this pod's DNS name) is set by the caller.

# own_keys: how many keys this pod's volume holds. 0 for a volume without any Redis data
# file (new or re-provisioned), the number the guard last recorded otherwise, "unknown"
# when there are data files but no record, or a record of no keys older than a data file:
# the guard samples, so a pod killed right after its first writes has a record of 0 keys
# beside an AOF that holds them (the guard touches a record of 0 keys every round).
own_keys() {
  _files=0
  _newer=0
  for _f in "$DATA_DIR/dump.rdb" "$DATA_DIR"/appendonlydir/*; do
    [ -s "$_f" ] || continue
    _files=1
    [ -n "$(find "$_f" -prune -newer "$STATE_FILE" 2>/dev/null)" ] && _newer=1
  done
  if [ "$_files" = 0 ]; then
    echo 0
    return 0
  fi
  _keys="$(state_field keys)"
  if [ "$_keys" = 0 ] && [ "$_newer" = 1 ]; then
    echo unknown
    return 0
  fi
  echo "${_keys:-unknown}"
}

# volume_summary: what this pod's data volume holds, for the start log: the data files
# own_keys looks at with their sizes, the role record and the keys the guard last recorded.
volume_summary() {
  _files="$(cd "$DATA_DIR" 2>/dev/null && for _f in dump.rdb appendonlydir/*; do
    [ -e "$_f" ] && printf '%s %s bytes, ' "$_f" "$(wc -c < "$_f" | tr -d ' ')"
  done)"
  echo "${_files:-no data file, }role record '$(cat "$ROLE_FILE" 2>/dev/null || true)', keys recorded '$(state_field keys)'"
}

# state_field NAME: one field of the guard's record of this pod ("name value" lines).
state_field() {
  awk -v f="$1" '$1 == f { print $2; exit }' "$STATE_FILE" 2>/dev/null || true
}

# node_facts HOST: "<role> <keys> <loading> <master_host> <replid> <replid2> <offset>"
# from one INFO of that Redis server, or nothing when it does not answer. INFO works
# while a server loads its data, and a loading server holds data.
node_facts() {
  redis_cmd "$1" INFO | tr -d '\r' | awk -F: '
    $1 == "role" { role = $2 }
    $1 == "loading" { loading = $2 }
    $1 == "master_host" { mh = $2 }
    $1 == "master_replid" { r1 = $2 }
    $1 == "master_replid2" { r2 = $2 }
    $1 == "master_repl_offset" { off = $2 }
    /^db[0-9]+:keys=/ { split($2, a, /[=,]/); keys += a[2] }
    END { if (role != "") print role, keys + 0, loading + 0, (mh == "" ? "-" : mh), (r1 == "" ? "-" : r1), (r2 == "" ? "-" : r2), off + 0 }'
}

# survey_peers: one line per other Redis pod, "<host> <facts>" (see node_facts) or
# "<host> unreachable".
survey_peers() {
  for _node in $REDIS_NODES; do
    _host="$(fqdn "$_node")"
    [ "$_host" = "$ME" ] && continue
    _facts="$(node_facts "$_host")"
    echo "$_host ${_facts:-unreachable}"
  done
}

# peers_with_data < survey_peers: hosts that hold keys or are loading them.
peers_with_data() {
  awk '$2 != "unreachable" && ($3 > 0 || $4 == 1) { printf "%s%s", sep, $1; sep = " " } END { print "" }'
}

# peers_unreachable < survey_peers: hosts that did not answer.
peers_unreachable() {
  awk '$2 == "unreachable" { printf "%s%s", sep, $1; sep = " " } END { print "" }'
}

# decide_start SECONDS_WAITED PREVIOUS_IP: how this pod starts, as
#   "master - <reason>", "replica <host> <reason>" or "wait - <reason>".
# Inputs: the Sentinels (newest epoch wins), this pod's volume and role record, and
# every other Redis pod's data. The caller re-runs it every second while it says wait.
decide_start() {
  _waited="$1"
  _previous_ip="$2"
  _keys="$(own_keys)"
  _peers="$(survey_peers)"
  _with_data="$(echo "$_peers" | peers_with_data)"
  _unreachable="$(echo "$_peers" | peers_unreachable)"
  _bootstrap="$(fqdn "$BOOTSTRAP_MASTER")"

  if [ "$_keys" = 0 ] && [ -e "$ALLOW_EMPTY_FILE" ]; then
    echo "master - an operator allowed this pod to start as an empty master ($ALLOW_EMPTY_FILE exists)"
    return 0
  fi

  _view="$(sentinel_views "" | newest_sentinel_view)"
  if [ -n "$_view" ]; then
    # shellcheck disable=SC2086
    set -- $_view
    _epoch="$1" _host="$2" _flags="$4"
    if [ "$_host" != "$ME" ]; then
      if [ "$_keys" != 0 ] && follows_empty_history "$_host"; then
        echo "wait - the Sentinels name $_host (epoch $_epoch), but it is an empty master from another replication history and this volume holds data; following it would erase the data"
      else
        echo "replica $_host the Sentinels name it master (epoch $_epoch)"
      fi
      return 0
    fi
    if [ "$_keys" = 0 ]; then
      decide_empty "the Sentinels still name this pod master (epoch $_epoch)" named
      return 0
    fi
    _why=""
    case "$_flags" in
      *s_down*|*o_down*|*failover*) _why="the Sentinels name this pod master but see it down ($_flags)" ;;
    esac
    if [ -z "$_why" ] && [ -n "$_previous_ip" ] && [ "$_previous_ip" != "$POD_IP" ]; then
      _why="the Sentinels name this pod master, but its IP changed ($_previous_ip -> $POD_IP) and Sentinel will not follow it"
    fi
    if [ -z "$_why" ] && [ -n "$_with_data" ]; then
      _why="the Sentinels name this pod master and it restarted, and $_with_data can take over with the data in memory (reloading here and a full resync of every replica would cost more than a failover)"
    fi
    if [ -z "$_why" ]; then
      echo "master - the Sentinels name this pod master (epoch $_epoch) and no replica with data answers"
    elif [ "$_waited" -ge "$FAILOVER_WAIT_SECONDS" ]; then
      echo "master - $_why, and no failover happened within ${FAILOVER_WAIT_SECONDS}s"
    else
      echo "wait - $_why; waiting for their failover"
    fi
    return 0
  fi

  if [ "$_keys" = 0 ]; then
    decide_empty "no Sentinel knows the master" unnamed
    return 0
  fi
  _record="$(cat "$ROLE_FILE" 2>/dev/null || true)"
  case "$_record" in
    master)
      echo "master - no Sentinel knows the master and this pod's data volume says it was master"
      ;;
    "replica "*)
      echo "replica ${_record#replica } no Sentinel knows the master and this pod's data volume says it followed that master"
      ;;
    *)
      if [ "$ME" = "$_bootstrap" ]; then
        echo "master - no Sentinel knows a master, there is no role record, and it is the bootstrap master"
      else
        echo "replica $_bootstrap no Sentinel knows a master and there is no role record"
      fi
      ;;
  esac
}

# decide_empty CONTEXT named|unnamed: the verdict for a pod whose volume holds no data
# and that no Sentinel points elsewhere ("named": the Sentinels name this pod master).
# Uses _with_data, _unreachable and _bootstrap of decide_start.
decide_empty() {
  if [ "$2" = unnamed ] && [ "$ME" != "$_bootstrap" ]; then
    # Following a master costs an empty pod nothing; if the bootstrap pod is not the one
    # with the data, the Sentinels' failover moves this replica to the one that is.
    echo "replica $_bootstrap $1 and this pod's volume is empty (nothing to lose by following the bootstrap master)"
  elif [ -n "$_with_data" ]; then
    echo "wait - $1, this pod's volume is empty and $_with_data holds data; an empty master would erase it, so waiting for the Sentinels to make a node with data master"
  elif [ -n "$_unreachable" ]; then
    echo "wait - $1, this pod's volume is empty and $_unreachable does not answer (it may hold data); waiting"
  else
    echo "master - $1, and no Redis pod holds data (first boot)"
  fi
}

# follows_empty_history HOST: true when HOST answers as a master with no keys and does not
# descend from the replication history this pod last recorded; following it would make
# this pod's full resync erase the data it holds.
follows_empty_history() {
  _facts="$(node_facts "$1")"
  [ -n "$_facts" ] || return 1
  # shellcheck disable=SC2086
  set -- $_facts
  [ "$1" = "master" ] && [ "$2" = 0 ] && [ "$3" = 0 ] || return 1
  _mine="$(state_field replid)"
  [ -n "$_mine" ] || return 0
  [ "$_mine" != "$5" ] && [ "$_mine" != "$6" ]
}

# --- the guard: fencing and demotion of a running master ---

# probe_peers INFO_REPLICATION: asks every Sentinel and every replica at once, so a
# partition costs one FENCE_PROBE_TIMEOUT per check, not one per peer. Prints, per Sentinel,
# "sentinel <addr> <epoch> <host> <port> <flags>" ("sentinel <addr> -" when it does not
# answer) and, per replica that the master's INFO lists online with an acknowledgement in
# the last second, "replica <host> ok" when it also answers a PING from here. The master's
# own view alone lags: a replica cut off mid-second still shows lag 0 for up to 2 s.
probe_peers() {
  for _addr in $(sentinel_addresses); do
    (
      _view="$(CLI_TIMEOUT="$FENCE_PROBE_TIMEOUT" sentinel_view "$_addr")"
      echo "sentinel $_addr ${_view:--}"
    ) &
  done
  for _replica in $(echo "$1" | tr -d '\r' | sed -n 's/^slave[0-9]*:ip=\([^,]*\),.*state=online,.*lag=\([01]\)$/\1/p'); do
    (
      [ "$(CLI_TIMEOUT="$FENCE_PROBE_TIMEOUT" redis_cmd "$_replica" PING)" = "PONG" ] && echo "replica $_replica ok"
    ) &
  done
  wait
}

# replicas_healthy < probe_peers: how many replicas answered.
replicas_healthy() {
  awk '$1 == "replica" { n++ } END { print n + 0 }'
}

# sentinels_backing ME < probe_peers: how many Sentinels answer and back ME. A Sentinel
# backs ME when it names ME master and does not see it down (right after a switch its new
# link still shows "disconnected"), or when it names another master that it sees down, is
# failing over from, or knows only under an older config epoch than a Sentinel naming ME.
# The last two are a freshly promoted master's situation: until every Sentinel has
# switched, some still name the old master. A Sentinel that stale cannot vote in a
# failover of ME (it does not know ME as master), so it backs no competitor.
sentinels_backing() {
  awk -v me="$1" '
    $1 != "sentinel" || $3 == "-" { next }
    { n++; epoch[n] = $3; host[n] = $4; flags[n] = $6 }
    $4 == me && $3 > mine { mine = $3 }
    END {
      for (i = 1; i <= n; i++) {
        if (host[i] == me) { if (flags[i] !~ /_down|failover/) backing++ }
        else if (flags[i] ~ /_down|failover/ || (mine != "" && epoch[i] < mine)) backing++
      }
      print backing + 0
    }'
}

# superseded_by ME < probe_peers: "<epoch> <host> <port>" when at least SENTINEL_QUORUM
# Sentinels answer and all that answer name the same other master, see it up and run no
# failover; nothing otherwise. While a failover runs, Sentinels disagree for a moment, and
# acting on either answer then would undo it.
superseded_by() {
  awk -v me="$1" -v need="$SENTINEL_QUORUM" '
    $1 != "sentinel" || $3 == "-" { next }
    { n++; if (n == 1) { host = $4; port = $5 } }
    $4 != host || $6 != "master" { bad = 1 }
    $3 > epoch { epoch = $3 }
    END { if (n >= need && !bad && host != me) print epoch, host, port }'
}

# fence_verdict FENCED BACKING HEALTHY EXPECTED BAD_ROUNDS: "fence <reason>",
# "unfence <reason>" or "keep <reason>".
# A master is fenced (refuses writes) once, for FENCE_AFTER_ROUNDS checks in a row, fewer
# than a majority of the Sentinels back it AND not every replica is healthy. Both are
# needed for a failover to happen behind its back: a majority of Sentinels that cannot
# see it, and a replica they can promote; a replica they promote leaves this master, so
# with every replica still attached no failover can be under way. That is why losing
# Sentinels alone (two of three down) does not stop writes.
fence_verdict() {
  _facts="$2 of $SENTINEL_COUNT Sentinels back this master (need $(sentinel_majority)), $3 of $4 replicas healthy"
  if ! fence_check_fails "$2" "$3" "$4"; then
    if [ "$1" = 1 ]; then echo "unfence $_facts"; else echo "keep $_facts; not fenced"; fi
  elif [ "$5" -ge "$FENCE_AFTER_ROUNDS" ] && [ "$1" = 0 ]; then
    echo "fence $_facts, for $5 checks in a row"
  elif [ "$1" = 1 ]; then
    echo "keep $_facts; staying fenced"
  else
    echo "keep $_facts, for $5 of $FENCE_AFTER_ROUNDS checks in a row"
  fi
}

sentinel_majority() {
  echo $(( SENTINEL_COUNT / 2 + 1 ))
}

# fence_check_fails BACKING HEALTHY EXPECTED: true when this check counts against the
# master: fewer than a majority of the Sentinels back it and not every replica is healthy.
fence_check_fails() {
  [ "$1" -lt "$(sentinel_majority)" ] && [ "$2" -lt "$3" ]
}

# decide_demote ME < probe_peers: "demote <host> <port> <reason>" when the Sentinels agree
# that <host> replaced this master (superseded_by) and <host> answers as master, so this
# server becomes its replica; "stay - - <reason>" otherwise.
decide_demote() {
  read -r _epoch _host _port <<EOF
$(superseded_by "$1")
EOF
  if [ -z "$_host" ]; then
    echo "stay - - no quorum of Sentinels agrees on another master"
    return 0
  fi
  _role="$(redis_role "$_host")"
  if [ "$_role" = "master" ]; then
    echo "demote $_host $_port the Sentinels name $_host (epoch $_epoch), which answers as master"
  else
    echo "stay - - the Sentinels name $_host (epoch $_epoch), but it answers as ${_role:-nothing}, not as master"
  fi
}

# decide_priority_restore PRIORITY CONFIGURED CHANGED_FOR: "restore <reason>" when this
# replica's replica-priority has been PRIORITY instead of CONFIGURED for CHANGED_FOR
# seconds, longer than PRIORITY_RESTORE_AFTER_SECONDS (a master's preStop gives the replica
# it hands over to priority 1 and restores it afterwards; a hook that died in between
# would leave it winning later failovers over replicas with more data), "keep <reason>"
# otherwise.
decide_priority_restore() {
  if [ "$1" = "$2" ]; then
    echo "keep replica-priority is $2 as configured"
  elif [ "$3" -gt "$PRIORITY_RESTORE_AFTER_SECONDS" ]; then
    echo "restore it was $1 for over ${PRIORITY_RESTORE_AFTER_SECONDS}s, longer than any handover"
  else
    echo "keep replica-priority is $1 for ${3}s, within the ${PRIORITY_RESTORE_AFTER_SECONDS}s a handover may take"
  fi
}
