#!/bin/sh
# Decisions of a Sentinel container, sourced by sentinel-start.sh; never run on its own.
# Each decision is a function that prints a verdict and its reason and changes nothing,
# so the unit tests can run it against a stand-in previous config.
#
# Environment (set by the manifests): MASTER_NAME.

# decide_epochs PREVIOUS_CONFIG DISCOVERED_EPOCH: "<current-epoch> <leader-epoch> <reason>"
# for a Sentinel about to start.
#
# Sentinel votes at most once per epoch: it records the epoch of its last vote for a
# master (leader-epoch) and its current epoch in its config file, and writes the file to
# disk before it answers the vote request. A Sentinel restarted without them would
# answer the next vote request of that epoch as if it had never voted and could elect a
# second leader for the same epoch. The container's emptyDir keeps the file Sentinel
# rewrote, so both are carried over from it (only the monitored master's leader-epoch:
# the template monitors just that one). The current epoch is also raised to the newest
# config epoch the other Sentinels report (DISCOVERED_EPOCH, 0 if none) and is never
# below the leader epoch or the previous config epoch, as Sentinel itself keeps it.
decide_epochs() {
  { cat "$1" 2>/dev/null || true; } | awk -v master="$MASTER_NAME" -v discovered="${2:-0}" '
    $1 == "sentinel" && $2 == "current-epoch" && NF == 3 { current = $3 + 0; seen = 1 }
    $1 == "sentinel" && $2 == "leader-epoch" && $3 == master && NF == 4 { leader = $4 + 0; seen = 1 }
    $1 == "sentinel" && $2 == "config-epoch" && $3 == master && NF == 4 { config = $4 + 0; seen = 1 }
    END {
      epoch = current + 0
      if (leader > epoch) epoch = leader
      if (config > epoch) epoch = config
      if (discovered + 0 > epoch) epoch = discovered + 0
      if (seen) {
        reason = "the previous run of this container recorded current-epoch " current + 0 ", leader-epoch " leader + 0 " and config-epoch " config + 0
      } else {
        reason = "no epochs recorded by a previous run of this container"
      }
      print epoch, leader + 0, reason "; the other Sentinels report config-epoch " discovered + 0
    }'
}
