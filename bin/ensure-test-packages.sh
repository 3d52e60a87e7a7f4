#!/bin/sh
# Runs before `npm test` (npm's pretest). As root on a Debian (apt) system, installs the
# Debian packages the tests need that are missing: Redis and Sentinel for the live suite,
# bubblewrap, iproute2 and nftables for the pod simulator, python3-redis for its Python
# client pods, shellcheck for the script tests, prometheus-redis-exporter for the metrics
# sidecars the simulator runs (and the metrics ACL test), prometheus for promtool (the alert
# rules' checks and unit tests), haproxy for the proxy pods the simulator runs (and the
# haproxy.cfg checks). Then it stops the services those
# packages start (the tests run their own in network namespaces). Anywhere else, and when
# nothing is missing, it does nothing and says nothing: the tests that need a missing
# package (the live suite, the shellcheck tests) then skip with one line each, or fail under
# CI=true. If apt-get fails it says so and lets the tests run (and report what lacks).
# kubectl (kustomize rendering) is no Debian package: the tests that run it skip the same way.
set -eu

PACKAGES="redis-server redis-sentinel redis-tools bubblewrap iproute2 python3-redis shellcheck nftables openssl prometheus-redis-exporter prometheus haproxy"
SERVICES="redis-server redis-sentinel prometheus-redis-exporter prometheus haproxy"

[ "$(id -u)" = 0 ] || exit 0
command -v apt-get >/dev/null 2>&1 || exit 0
command -v dpkg >/dev/null 2>&1 || exit 0

is_installed() {
  dpkg -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'
}

set --
for package in $PACKAGES; do
  is_installed "$package" || set -- "$@" "$package"
done
[ "$#" -gt 0 ] || exit 0

echo "ensure-test-packages: installing $* (missing; the tests need them)"
log=$(mktemp)
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; } >"$log" 2>&1; then
  echo "ensure-test-packages: apt-get failed, tests needing these packages will skip or fail; its last lines:" >&2
  tail -n 15 "$log" >&2
  rm -f "$log"
  exit 0
fi
rm -f "$log"

# Only services this run installed: a Redis the machine already ran is left alone.
for service in $SERVICES; do
  case " $* " in
    *" $service "*) invoke-rc.d "$service" stop >/dev/null 2>&1 || true ;;
  esac
done
