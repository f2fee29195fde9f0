#!/usr/bin/env bash
# The README's test command: prepares everything the test suite needs on a fresh machine that has only the
# .NET 10 SDK, then runs every test of the solution. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

dotnet --info >/dev/null || { echo "the .NET 10 SDK is required (dotnet not found)" >&2; exit 1; }

# PostgreSQL server binaries: the tests start their own server on a loopback port (tests/Shared/PostgresServer.cs),
# so only initdb, pg_ctl and postgres must exist. Debian puts them in /usr/lib/postgresql/<major>/bin.
have_postgres_binaries() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] && return 0
    done
    # -x follows links: a link whose target was uninstalled does not count
    [[ -x $(command -v initdb) && -x $(command -v pg_ctl) && -x $(command -v postgres) ]]
}

install_postgres() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || {
            echo "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH," \
                 "and installing Debian's package 'postgresql' needs root: run as root, install sudo, or" \
                 "run 'apt-get install postgresql' as root" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || {
        echo "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH," \
             "and apt-get is missing: install the PostgreSQL 15 server with this system's package manager" >&2
        exit 1
    }
    echo "installing the PostgreSQL server (Debian package 'postgresql')..." >&2
    local log
    log=$(mktemp)
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends)
    # Package lists are fetched only when apt does not know the package yet or the install fails on stale lists.
    apt_install() {
        "${apt[@]}" install postgresql-common >>"$log" 2>&1 || return 1
        # No 'main' cluster: the package would otherwise create one and start a system-wide server on port 5432.
        "${sudo[@]}" sed -ri 's/^#? *create_main_cluster *=.*/create_main_cluster = false/' \
            /etc/postgresql-common/createcluster.conf >>"$log" 2>&1 || return 1
        "${apt[@]}" install postgresql >>"$log" 2>&1
    }
    if ! apt-cache show postgresql >/dev/null 2>&1 || ! apt_install; then
        "${apt[@]}" update >>"$log" 2>&1 && apt_install || {
            cat "$log" >&2
            echo "installing Debian's package 'postgresql' failed (apt-get output above)" >&2
            exit 1
        }
    fi
    rm -f "$log"
    have_postgres_binaries || {
        echo "Debian's package 'postgresql' is installed but initdb, pg_ctl or postgres is still missing" \
             "from /usr/lib/postgresql/*/bin" >&2
        exit 1
    }
}

have_postgres_binaries || install_postgres

dotnet test RapidFire.sln -c Release --logger "console;verbosity=minimal" "$@"
