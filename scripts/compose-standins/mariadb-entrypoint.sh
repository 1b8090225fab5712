#!/bin/sh
# The MariaDB stand-in's entrypoint, after the official image's docker-entrypoint.sh: arguments that are flags go to
# mariadbd; on an empty data folder it creates the system tables, sets MARIADB_ROOT_PASSWORD for root from
# anywhere and creates MARIADB_DATABASE, through a server that listens on a socket only, so that nothing (the
# health check included) reaches the database before it is ready; then mariadbd runs as user mysql.
set -eu
case ${1:-mariadbd} in -*) set -- mariadbd "$@" ;; esac
if [ "${1:-mariadbd}" != mariadbd ]; then exec "$@"; fi
[ $# -gt 0 ] || set -- mariadbd
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld
chown -R mysql:mysql /var/lib/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
	: "${MARIADB_ROOT_PASSWORD:?is not set: the official image, and so this stand-in, needs a root password}"
	echo "stand-in entrypoint: initialising /var/lib/mysql"
	mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=normal >/dev/null
	sock=/run/mysqld/init.sock
	setpriv --reuid=mysql --regid=mysql --init-groups mariadbd --skip-networking --socket=$sock &
	pid=$!
	tries=0
	until mariadb --socket=$sock -uroot -e 'SELECT 1' >/dev/null 2>&1; do
		tries=$((tries + 1))
		[ $tries -lt 120 ] || { echo "stand-in entrypoint: the initialising server did not start" >&2; exit 1; }
		sleep 0.5
	done
	# SQL string literals: backslashes and quotes doubled.
	pw=$(printf '%s' "$MARIADB_ROOT_PASSWORD" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")
	# mariadb-install-db also makes root@127.0.0.1, root@::1 and root@<host name> with no password, which a TCP login
	# as root would match before root@'%'; as in the official image, root is left at localhost and '%'.
	{
		echo "DELETE FROM mysql.global_priv WHERE (User = 'root' AND Host <> 'localhost') OR User = '';"
		echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
		echo "FLUSH PRIVILEGES;"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$pw';"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY '$pw';"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		if [ -n "${MARIADB_DATABASE:-}" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`$(printf '%s' "$MARIADB_DATABASE" | sed 's/`/``/g')\`;"
		fi
	} | mariadb --socket=$sock -uroot
	MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb-admin --socket=$sock -uroot shutdown
	wait $pid
	echo "stand-in entrypoint: initialised"
fi
exec setpriv --reuid=mysql --regid=mysql --init-groups "$@"
