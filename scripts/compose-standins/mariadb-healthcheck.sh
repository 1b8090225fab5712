#!/bin/sh
# The MariaDB stand-in's healthcheck.sh, after the official image's: the tests compose asks for. --connect: the
# server takes a login over TCP (mariadb-admin ping would answer 0 even to a refused login); --innodb_initialized:
# InnoDB is up. It logs in as root with MARIADB_ROOT_PASSWORD, which the container's environment holds.
set -eu
q() { MYSQL_PWD=${MARIADB_ROOT_PASSWORD:-} mariadb --protocol=tcp -h127.0.0.1 -uroot -Nse "$1"; }
[ $# -gt 0 ] || set -- --connect
for test in "$@"; do
	case $test in
	--connect) [ "$(q 'SELECT 1')" = 1 ] ;;
	--innodb_initialized) [ "$(q "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" = 1 ] ;;
	*) echo "healthcheck.sh (stand-in): unknown test $test" >&2; exit 2 ;;
	esac
done
