#!/usr/bin/env python3
"""A redis-py application of redis-sentinel-ha: Sentinel discovery, the `app` user's
credentials, writes to the master, reads from a replica, and retries that carry writes
through a failover.

Run it in a pod whose labels the NetworkPolicies admit (by default `redis-client: "true"`
with the instance name `redis`), with the Secret's `app-password` mounted:

    REDIS_PASSWORD_FILE=/etc/redis-app/app-password python3 sentinel_client.py --seconds 60

It writes keys for that long, reads each back from a replica, and prints one JSON line:
how many writes, how many needed a retry, the longest wait, how many failed for good.
Exit status 1 when a write failed for good.

Environment:
  REDIS_SENTINELS      host:port list, comma-separated (default redis-sentinel:26379)
  REDIS_MASTER_NAME    default mymaster
  REDIS_USERNAME       default app
  REDIS_PASSWORD_FILE  file holding the password (or REDIS_PASSWORD, the password itself)
  REDIS_TLS_CA         CA certificate file: connect with TLS (when the system has TLS on)
"""
import argparse
import json
import os
import sys
import time

from redis.exceptions import BusyLoadingError, ConnectionError, ResponseError, TimeoutError
from redis.sentinel import Sentinel

# Recommended client settings (the README explains each; the failover benchmark uses the
# same numbers):
#  - connect timeout 0.25 s: a connection inside the cluster takes well under a
#    millisecond, and an attempt on a master that just became unreachable must not hold
#    the client back once the Sentinels name the new one;
#  - command timeout 1 s: a command on a dead socket fails and the client asks again;
#  - retry a failed write every 0.05 s for up to 30 s: Sentinel needs downAfter (5 s) and
#    about 1.5 s more to promote a replica.
CONNECT_TIMEOUT_S = 0.25
COMMAND_TIMEOUT_S = 1.0
RETRY_DELAY_S = 0.05
RETRY_FOR_S = 30.0

# Errors after which the same command succeeds once the client has found the (new)
# master. redis-py turns READONLY on a master connection into ConnectionError, and
# MasterNotFoundError (no Sentinel names a master yet) is a ConnectionError too.
RETRYABLE_REPLIES = ('NOREPLICAS', 'MASTERDOWN', 'LOADING', 'READONLY')


def password():
    path = os.environ.get('REDIS_PASSWORD_FILE')
    if path:
        with open(path, encoding='utf-8') as f:
            return f.read().strip()
    return os.environ['REDIS_PASSWORD']


def connect():
    sentinels = [(h, int(p)) for h, p in (a.rsplit(':', 1) for a in os.environ.get('REDIS_SENTINELS', 'redis-sentinel:26379').split(','))]
    credentials = {'username': os.environ.get('REDIS_USERNAME', 'app'), 'password': password()}
    tls = {'ssl': True, 'ssl_ca_certs': os.environ['REDIS_TLS_CA']} if os.environ.get('REDIS_TLS_CA') else {}
    timeouts = {'socket_connect_timeout': CONNECT_TIMEOUT_S, 'socket_timeout': COMMAND_TIMEOUT_S}
    # The same user and password log in to the Sentinels (sentinel_kwargs) and to Redis.
    sentinel = Sentinel(sentinels, sentinel_kwargs={**credentials, **tls, **timeouts}, **credentials, **tls, **timeouts)
    name = os.environ.get('REDIS_MASTER_NAME', 'mymaster')
    return sentinel.master_for(name), sentinel.slave_for(name)


def with_retries(command):
    """Run command() until it succeeds or RETRY_FOR_S has passed; returns (result, retries)."""
    deadline = time.monotonic() + RETRY_FOR_S
    retries = 0
    while True:
        try:
            return command(), retries
        except (ConnectionError, TimeoutError, BusyLoadingError, ResponseError) as err:
            if isinstance(err, ResponseError) and not str(err).startswith(RETRYABLE_REPLIES):
                raise
            if time.monotonic() >= deadline:
                raise
            retries += 1
            time.sleep(RETRY_DELAY_S)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='how long to write')
    parser.add_argument('--prefix', default='example:python', help='key prefix')
    args = parser.parse_args()

    master, replica = connect()
    writes = retried = failed = replica_reads = 0
    longest_wait_ms = 0.0
    end = time.monotonic() + args.seconds
    i = 0
    while time.monotonic() < end:
        key, value = f'{args.prefix}:{i}', str(i)
        started = time.monotonic()
        try:
            # SET is idempotent, so repeating it after an unanswered attempt is safe. A
            # non-idempotent command (INCR, LPUSH) can run twice when a reply is lost.
            _, retries = with_retries(lambda: master.set(key, value))
            writes += 1
            retried += 1 if retries else 0
        except Exception as err:  # noqa: BLE001 - report and go on
            failed += 1
            print(f'write {key} failed for good: {err}', file=sys.stderr)
        longest_wait_ms = max(longest_wait_ms, (time.monotonic() - started) * 1000)
        # Reads may go to a replica, which can lag a little behind the master.
        try:
            if replica.get(key) is not None:
                replica_reads += 1
        except (ConnectionError, TimeoutError):
            pass
        i += 1
        time.sleep(0.01)
    print(json.dumps({'writes': writes, 'retried': retried, 'failed': failed,
                      'longest_wait_ms': round(longest_wait_ms), 'replica_reads': replica_reads}))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
