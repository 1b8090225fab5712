#!/bin/sh
# The Redis stand-in's entrypoint, after the official image's docker-entrypoint.sh: arguments that are flags or a
# .conf file go to redis-server; redis-server runs as user redis, owning /data (the volume, the working directory,
# where the append-only file goes), with --protected-mode no, since the official image turns protected mode off
# for a server other containers reach without a password.
set -eu
case ${1:-redis-server} in -* | *.conf) set -- redis-server "$@" ;; esac
if [ "${1:-redis-server}" = redis-server ]; then
	[ $# -gt 0 ] || set -- redis-server
	chown -R redis:redis .
	exec setpriv --reuid=redis --regid=redis --init-groups "$@" --protected-mode no
fi
exec "$@"
