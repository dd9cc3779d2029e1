#!/bin/sh
# The entry point of deploy/images/rabbitmq: writes /etc/rabbitmq/rabbitmq.conf
# from RABBITMQ_DEFAULT_USER and RABBITMQ_DEFAULT_PASS (the broker creates that
# account only when its database, in the volume /var/lib/rabbitmq, is new, as
# the public image does), gives the volume to the user rabbitmq and replaces
# itself with the server, run as rabbitmq, so that SIGTERM reaches it.
set -eu
conf=/etc/rabbitmq/rabbitmq.conf
{
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    echo "prometheus.tcp.port = 15692"
    # The account is reached from other containers and machines.
    echo "loopback_users = none"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
} >"$conf"
chown rabbitmq:rabbitmq "$conf" && chmod 600 "$conf"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq \
    /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
