#!/usr/bin/env bash
# Install the real servers and reference decoders the tests use (idempotent).
#   - MariaDB 10.11 + mariadb-binlog + mariadb-test-data (Debian bookworm)
#   - a Debian sid root holding MySQL 9.7 (mysqld, mysqlbinlog, mysql-testsuite)
#   - nats-server 2.9 and redis-server 7.0 (Debian bookworm) for binlogkit.lab.brokers
# Environment: BINLOGKIT_SID_ROOT (default /opt/binlogkit-sid).
set -euo pipefail
SID_ROOT=${BINLOGKIT_SID_ROOT:-/opt/binlogkit-sid}
export DEBIAN_FRONTEND=noninteractive

need=()
for p in mariadb-server mariadb-client mariadb-test-data debootstrap zstd \
         nats-server redis-server; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

if [ ! -x "$SID_ROOT/usr/bin/apt-get" ]; then
    rm -rf "$SID_ROOT"
    mkdir -p "$SID_ROOT"
    debootstrap --variant=minbase sid "$SID_ROOT" "$mirror" >/dev/null
fi
if [ ! -x "$SID_ROOT/usr/sbin/mysqld" ] || [ ! -x "$SID_ROOT/usr/bin/mysqlbinlog" ] \
   || [ ! -d "$SID_ROOT/usr/lib/mysql-test" ]; then
    # mysql-testsuite pulls in mysql-server, whose postinst wants a running
    # system; policy-rc.d keeps it from starting services inside the root.
    printf '#!/bin/sh\nexit 101\n' > "$SID_ROOT/usr/sbin/policy-rc.d"
    chmod +x "$SID_ROOT/usr/sbin/policy-rc.d"
    # The mirror may serve a sid Release file past its Valid-Until date.
    chroot "$SID_ROOT" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false update -qq
    chroot "$SID_ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends mysql-server-core mysql-client mysql-testsuite >/dev/null
fi
echo "mariadb: $(mariadbd --version 2>/dev/null | head -1)"
echo "mysql:   $(chroot "$SID_ROOT" mysqld --version 2>/dev/null | head -1) in $SID_ROOT"
echo "nats:    $(nats-server --version 2>/dev/null | head -1)"
echo "redis:   $(redis-server --version 2>/dev/null | head -1)"
