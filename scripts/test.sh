#!/usr/bin/env bash
# The README's test command: prepares everything the test suite needs on a fresh machine that has only the
# .NET 10 SDK, then runs every test of the solution. CI (.ci/run) calls exactly this.
#   - PostgreSQL server binaries (Debian package 'postgresql'): the tests start their own server on a loopback port.
#   - Chromium (Debian package 'chromium'): the dashboard's browser test drives it through Playwright; no browser is
#     ever downloaded.
#   - s3rver (npm package, with Debian's 'nodejs' and 'npm'): the S3 tests start it on a loopback port.
#   - then tests/packaging/packages.sh: every NuGet package packed, installed and run from a local feed.
set -euo pipefail
cd "$(dirname "$0")/.."

dotnet --info >/dev/null || { echo "the .NET 10 SDK is required (dotnet not found)" >&2; exit 1; }

# apt-get, as root or through sudo; exits naming what is missing when neither is possible.
apt=()
sudo=()
prepare_apt() {
    local what=$1
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || {
            echo "$what is missing, and installing it with apt-get needs root: run as root, install sudo, or install it yourself" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || {
        echo "$what is missing, and apt-get is not there: install it with this system's package manager" >&2
        exit 1
    }
    apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends)
}

# Runs "$@" (an install step); on failure refreshes the package lists once and tries again; prints apt's output on failure.
with_fresh_lists() {
    local what=$1
    shift
    local log
    log=$(mktemp)
    if ! "$@" >>"$log" 2>&1; then
        "${apt[@]}" update >>"$log" 2>&1 && "$@" >>"$log" 2>&1 || {
            cat "$log" >&2
            echo "installing $what failed (apt-get output above)" >&2
            exit 1
        }
    fi
    rm -f "$log"
}

# PostgreSQL server binaries: only initdb, pg_ctl and postgres must exist. Debian puts them in /usr/lib/postgresql/<major>/bin.
have_postgres_binaries() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] && return 0
    done
    # -x follows links: a link whose target was uninstalled does not count
    [[ -x $(command -v initdb) && -x $(command -v pg_ctl) && -x $(command -v postgres) ]]
}

install_postgres_packages() {
    "${apt[@]}" install postgresql-common || return 1
    # No 'main' cluster: the package would otherwise create one and start a system-wide server on port 5432.
    "${sudo[@]}" sed -ri 's/^#? *create_main_cluster *=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf || return 1
    "${apt[@]}" install postgresql
}

if ! have_postgres_binaries; then
    prepare_apt "the PostgreSQL server (initdb, pg_ctl, postgres)"
    echo "installing the PostgreSQL server (Debian package 'postgresql')..." >&2
    with_fresh_lists "Debian's package 'postgresql'" install_postgres_packages
    have_postgres_binaries || {
        echo "Debian's package 'postgresql' is installed but initdb, pg_ctl or postgres is still missing from /usr/lib/postgresql/*/bin" >&2
        exit 1
    }
fi

export RAPIDFIRE_CHROMIUM=${RAPIDFIRE_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $RAPIDFIRE_CHROMIUM ]]; then
    prepare_apt "Chromium ($RAPIDFIRE_CHROMIUM)"
    echo "installing Chromium (Debian package 'chromium')..." >&2
    with_fresh_lists "Debian's package 'chromium'" "${apt[@]}" install chromium
    [[ -x $RAPIDFIRE_CHROMIUM ]] || { echo "Debian's package 'chromium' is installed but $RAPIDFIRE_CHROMIUM is missing" >&2; exit 1; }
fi
# Playwright drives that Chromium: it must never download browsers of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# s3rver (npm package), a real S3 server the S3 tests start on a loopback port (tests/Shared/S3Server.cs), in .tools/
# of the checkout (ignored by git); Node.js and npm from Debian when missing. RAPIDFIRE_S3RVER may point elsewhere.
S3RVER_VERSION=3.7.1
s3rver_installed() {
    [[ -f .tools/node_modules/s3rver/package.json ]] &&
        [[ $(node -p "require('./.tools/node_modules/s3rver/package.json').version" 2>/dev/null) == "$S3RVER_VERSION" ]]
}
if [[ -z ${RAPIDFIRE_S3RVER:-} ]] && ! s3rver_installed; then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        prepare_apt "Node.js and npm (to run s3rver)"
        echo "installing Node.js and npm (Debian packages 'nodejs' and 'npm')..." >&2
        with_fresh_lists "Debian's packages 'nodejs' and 'npm'" "${apt[@]}" install nodejs npm
    fi
    echo "installing s3rver $S3RVER_VERSION into .tools/ (npm)..." >&2
    npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error "s3rver@$S3RVER_VERSION" >&2
    s3rver_installed || { echo "npm installed s3rver, but .tools/node_modules/s3rver is not version $S3RVER_VERSION" >&2; exit 1; }
fi

dotnet test RapidFire.sln -c Release --logger "console;verbosity=minimal" "$@"

# The packages as users install them (pack into a local feed, the tool, the file-based app, the template), after the
# test projects; skipped when arguments narrow `dotnet test` (run it alone with `bash tests/packaging/packages.sh`).
if [[ $# -eq 0 ]]; then
    bash tests/packaging/packages.sh
fi
