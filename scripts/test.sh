#!/usr/bin/env bash
# The README's test command: prepares everything the test suite needs on a fresh machine that has only the
# .NET 10 SDK, then runs every test of the solution. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

dotnet --info >/dev/null || { echo "the .NET 10 SDK is required (dotnet not found)" >&2; exit 1; }

dotnet test RapidFire.sln -c Release --logger "console;verbosity=minimal" "$@"
