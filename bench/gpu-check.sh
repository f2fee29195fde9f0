#!/usr/bin/env bash
# The GPU check of issue 8: the MNIST example fitted on a CUDA device and on the CPU with the same seed; it prints
# each fit's final validation metrics and throughput, and PASS when every config's final validation accuracy agrees
# (|Δ| <= 0.02). Two steps, so that the GPU machine needs neither the .NET SDK nor a package feed:
#
#   bench/gpu-check.sh prepare        where the package feed serves the CUDA backend: publishes bench/GpuCheck
#                                     self-contained for linux-x64 into bench/gpu-check/out (with examples/mnist)
#   bench/gpu-check.sh run [ARGS]     on the GPU machine: runs the published program, offline; ARGS go to it
#                                     (--devices cuda:0, --cpu-only, --epochs N, --chunks N, --seed S, --tolerance T)
#
# TORCH_BACKEND picks the TorchSharp package (default TorchSharp-cuda-linux). This machine's mirror does not serve the
# CUDA package; `TORCH_BACKEND=TorchSharp-cpu bench/gpu-check.sh prepare && bench/gpu-check.sh run --cpu-only` checks the
# whole pipeline on a CPU machine. NUGET_SOURCE (optional) restores from that feed instead of the configured ones,
# for instance a folder holding the CUDA packages.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/bench/gpu-check/out"
build="$repo/bench/gpu-check/build"

prepare() {
  local backend=${TORCH_BACKEND:-TorchSharp-cuda-linux}
  local log
  log=$(mktemp)
  local sources=()
  if [[ -n ${NUGET_SOURCE:-} ]]; then sources=(--source "$NUGET_SOURCE"); fi
  local staging="$build/out"
  echo "publishing bench/GpuCheck with $backend into $out ..."
  rm -rf "$staging"
  # Its own intermediate folders (--artifacts-path): the repository's obj/ and bin/ keep the default (cpu) build.
  # Published aside, then moved: a failed prepare leaves the previous out/ as it was, never a mix of two backends.
  if ! dotnet publish "$repo/bench/GpuCheck/GpuCheck.csproj" -c Release -r linux-x64 --self-contained \
      -p:TorchBackendPackage="$backend" --artifacts-path "$build" -o "$staging" "${sources[@]}" 2>&1 | tee "$log"; then
    if grep -qE "NU110[123].*$backend" "$log"; then
      echo >&2
      echo "error: the package $backend could not be restored: the package feed this machine uses does not serve it" >&2
      echo "       (this project's development machines' mirror has no TorchSharp-cuda-linux at all). Run prepare where a" >&2
      echo "       feed serves it (or point NUGET_SOURCE at one), then copy bench/gpu-check/out to the GPU machine." >&2
      echo "       To check the pipeline on a CPU machine: TORCH_BACKEND=TorchSharp-cpu bench/gpu-check.sh prepare" >&2
    elif grep -q "NU1301" "$log"; then
      echo "error: a package feed could not be reached (NU1301 above): prepare needs the package registry; run it where" >&2
      echo "       the feed answers, then copy bench/gpu-check/out to the GPU machine" >&2
    else
      echo "error: dotnet publish failed (output above)" >&2
    fi
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  mkdir -p "$staging/examples"
  cp -r "$repo/examples/mnist" "$staging/examples/"
  echo "$backend" > "$staging/torch-backend.txt"
  rm -rf "$out"
  mv "$staging" "$out"
  echo
  echo "ready: $out ($(du -sh "$out" | cut -f1), TorchSharp backend $backend); run it with: bench/gpu-check.sh run"
}

run() {
  if [[ ! -x "$out/GpuCheck" ]]; then
    echo "error: $out/GpuCheck is missing: run 'bench/gpu-check.sh prepare' first (or copy its out/ folder here)" >&2
    exit 2
  fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L || true
  else
    echo "(no nvidia-smi on this machine)"
  fi
  [[ -f "$out/torch-backend.txt" ]] && echo "published with $(cat "$out/torch-backend.txt")"
  exec "$out/GpuCheck" "$@"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  *)
    echo "usage: bench/gpu-check.sh prepare | run [--devices cuda:0] [--cpu-only] [--epochs N] [--chunks N] [--seed S] [--tolerance T]" >&2
    exit 64 ;;
esac
