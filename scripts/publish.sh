#!/usr/bin/env bash
# Publishes the `rapidfire` CLI compiled ahead of time (ReadyToRun) for this machine into DIR (default
# .tools/rapidfire) and prints how to run it. A one-time step of a few minutes (about 5 on 2 cores); a fit started
# from the published CLI reaches its first minibatch about 1.5 s sooner than one from `dotnet run` (no JIT of Akka.NET,
# linq2db's journal or Kestrel on start; see docs/benchmarks.md, issue 14).
#   bash scripts/publish.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${1:-.tools/rapidfire}")
case "$(uname -m)" in
    x86_64) rid=linux-x64 ;;
    aarch64) rid=linux-arm64 ;;
    *) echo "publish.sh: no ReadyToRun target for $(uname -m); run the CLI with dotnet run --project src/Host -c Release" >&2; exit 1 ;;
esac
dotnet publish src/Host -c Release -r "$rid" -o "$dir" -nologo -v q
echo "published: $dir/rapidfire (run it as \`$dir/rapidfire fit ...\`, or add $dir to PATH)"
