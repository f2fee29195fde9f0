#!/usr/bin/env bash
# Issue 19: RapidFire on a GPU machine that has PyTorch but no .NET, against PyTorch Lightning on the same card.
#
#   bash bench/gpu-run.sh pack     here (with the .NET SDK): publishes the rapidfire CLI self-contained for linux-x64
#                                  with NO libtorch of its own (TorchBackendPackage=none) into
#                                  bench/gpu-run/rapidfire-linux-x64.tar.xz (about 50 MB, ignored by git: carry it),
#                                  with TorchSharp 0.107's native source (src/Native, from TORCHSHARP_SRC: a clone of
#                                  dotnet/TorchSharp at 0.107.0; the tool library's `fetch` brings one) for the fallback
#   bash bench/gpu-run.sh run      there, in one call: unpacks it, points RAPIDFIRE_LIBTORCH_DIR at the machine's torch/lib,
#                                  runs `rapidfire info` (when TorchSharp's libLibTorchSharp.so does not bind to that
#                                  libtorch, it rebuilds it from the packed source against the machine's torch headers
#                                  and libraries with CMake and ninja, then runs it again),
#                                  `rapidfire fit --devices $DEVICES` of examples/mnist (4 configs,
#                                  hyperparallel), the same 4 configs one after another inside rapidfire (one fit each),
#                                  and bench/gpu-run/lightning_mnist.py (the same 4 one after another, as a Lightning user
#                                  runs them), sampling nvidia-smi; writes $OUT/gpu-run.md (figures) and the logs.
#
# Settings (environment): DEVICES (default cuda:0), EPOCHS (default 3), PYTHON (default /opt/torch/.venv/bin/python3,
# else python3), RAPIDFIRE_LIBTORCH_DIR (default: PYTHON's torch/lib), OUT (default bench/gpu-run/out),
# NATIVE_BUILD=1 (rebuild the native layer even when it binds), TORCH_ROOT (the torch install whose headers and
# TorchConfig.cmake the rebuild uses; default: the parent of RAPIDFIRE_LIBTORCH_DIR, torch/ of a PyTorch install).
# A CPU dry run here: DEVICES=cpu PYTHON=/usr/bin/python3 RAPIDFIRE_LIBTORCH_DIR=<a CPU libtorch lib folder> bench/gpu-run.sh run
# Every step's first error goes to gpu-run.md; the later steps still run.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
archive=$repo/bench/gpu-run/rapidfire-linux-x64.tar.xz

pack() {
  set -e
  local build=$repo/bench/gpu-run/build pub=$repo/bench/gpu-run/build/rapidfire
  rm -rf "$pub"
  dotnet publish "$repo/src/Host" -c Release -r linux-x64 --self-contained -p:TorchBackendPackage=none \
    -p:PublishReadyToRun=false -p:SatelliteResourceLanguages=en -p:DebugType=none -p:PublishDocumentationFiles=false \
    -p:PublishReferencesDocumentationFiles=false -p:AllowedReferenceRelatedFileExtensions=none \
    --artifacts-path "$build/artifacts" -o "$pub" -nologo -v q
  # what a run never needs: the debugger's and tracing's runtime parts, the standalone GCs
  rm -f "$pub"/{createdump,libmscordaccore.so,libmscordbi.so,libcoreclrtraceptprovider.so,libclrgc.so,libclrgcexp.so}
  if ls "$pub" | grep -qE '^lib(torch|c10)'; then echo "gpu-run: the publish holds a libtorch; it must not" >&2; exit 1; fi
  # TorchSharp's native layer, for a libtorch it does not bind to (run rebuilds it there)
  local src=${TORCHSHARP_SRC:-/work/.mirror/dotnet+TorchSharp/repo}
  if git -C "$src" rev-parse -q --verify HEAD: > /dev/null 2>&1; then
    local version
    version=$(git -C "$src" show HEAD:build/BranchInfo.props | sed -n 's:.*<MinorVersion>\(.*\)</MinorVersion>.*:\1:p')
    [[ $version == 107 ]] || { echo "gpu-run: $src is TorchSharp 0.$version, not 0.107 (the managed TorchSharp.dll's)" >&2; exit 1; }
    mkdir -p "$pub/torchsharp-native"
    git -C "$src" archive HEAD src/Native | tar -C "$pub/torchsharp-native" -xf - --strip-components=2
    git -C "$src" rev-parse HEAD > "$pub/torchsharp-native/COMMIT"
  else
    echo "gpu-run: no TorchSharp source at $src (set TORCHSHARP_SRC): the archive has no native fallback" >&2
  fi
  tar -C "$build" -cf - rapidfire | xz -T0 -9 > "$archive"
  echo "packed: $archive ($(du -h "$archive" | cut -f1); unpacked $(du -sh "$pub" | cut -f1), no libtorch)"
}

# Rebuilds libLibTorchSharp.so from the archive's TorchSharp source against the torch install at $1 (its headers and
# share/cmake/Torch), into the unpacked publish, where TorchNative loads it from; the build stays for the rest of the call.
native_build() {
  local root=$1 src=$work/rapidfire/torchsharp-native build=$work/native-build start
  [[ -f $src/CMakeLists.txt ]] || { note "- FAILED: native rebuild: the archive holds no TorchSharp source (pack with TORCHSHARP_SRC)"; return 1; }
  local config
  config=$(find "$root" -name TorchConfig.cmake 2> /dev/null | head -1)
  [[ -n $config ]] || { note "- FAILED: native rebuild: no TorchConfig.cmake under $root (set TORCH_ROOT to a torch install)"; return 1; }
  # another libtorch's headers warn where 2.10's did not: warnings stay warnings
  sed -i 's/add_definitions(-Werror)/# -Werror dropped by bench\/gpu-run.sh/' "$src/CMakeLists.txt"
  local generator=()
  command -v ninja > /dev/null && generator=(-G Ninja)
  start=$(date +%s)
  if cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DLIBTORCH_PATH="$root" -DTorch_DIR="$(dirname "$config")" > "$out/native-build.log" 2>&1 &&
     cmake --build "$build" --target LibTorchSharp -j "$(nproc)" >> "$out/native-build.log" 2>&1; then
    local built target
    built=$(find "$build" -name libLibTorchSharp.so | head -1)
    target=$(find "$work/rapidfire" -name libLibTorchSharp.so -not -path "$build/*" | head -1)
    cp "$built" "${target:-$work/rapidfire/libLibTorchSharp.so}"
    note "- native layer rebuilt against $root in $(( $(date +%s) - start )) s (TorchSharp $(cat "$src/COMMIT" 2> /dev/null | cut -c1-8))"
  else
    note "- FAILED: native rebuild after $(( $(date +%s) - start )) s: $(grep -m1 -E 'error|Error' "$out/native-build.log" || tail -1 "$out/native-build.log")"
    return 1
  fi
}

run() {
  local out=${OUT:-$repo/bench/gpu-run/out} devices=${DEVICES:-cuda:0} epochs=${EPOCHS:-3}
  local python=${PYTHON:-/opt/torch/.venv/bin/python3}
  [[ -x $python ]] || python=python3
  mkdir -p "$out"
  local report=$out/gpu-run.md work
  work=$(mktemp -d /tmp/gpu-run.XXXX)
  : > "$report"
  note() { echo "$*" | tee -a "$report"; }
  fail() { note "- FAILED: $1: $(grep -m1 -iE 'error|exception|fail' "$2" || tail -1 "$2")"; }

  note "# bench/gpu-run.sh ($(date -u +%FT%TZ)): devices $devices, $epochs epochs"
  [[ -f $archive ]] || { note "- FAILED: no $archive: run \`bench/gpu-run.sh pack\` where the .NET SDK is"; return 1; }
  tar -C "$work" -xJf "$archive"
  local rf=$work/rapidfire/rapidfire
  # the machine may have no ICU: the CLI reads and writes invariant-culture numbers anyway
  export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=${DOTNET_SYSTEM_GLOBALIZATION_INVARIANT:-1}
  export RAPIDFIRE_LIBTORCH_DIR=${RAPIDFIRE_LIBTORCH_DIR:-$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)}
  note "- libtorch: $RAPIDFIRE_LIBTORCH_DIR ($("$python" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1))"
  : > "$out/info.log"
  if [[ ${NATIVE_BUILD:-0} == 1 ]] || ! "$rf" info > "$out/info.log" 2>&1; then
    if [[ ${NATIVE_BUILD:-0} == 1 ]] || grep -qiE "does not bind|undefined symbol" "$out/info.log"; then
      note "- TorchSharp's native layer $([[ ${NATIVE_BUILD:-0} == 1 ]] && echo "is rebuilt (NATIVE_BUILD=1)" || echo "does not bind to this libtorch: rebuilding it")"
      native_build "${TORCH_ROOT:-$(dirname "$RAPIDFIRE_LIBTORCH_DIR")}" # the layer it leaves (rebuilt, or the packed one) is then tried
      "$rf" info > "$out/info.log" 2>&1
    fi
  fi
  if [[ -s $out/info.log ]] && ! grep -qiE "^error" "$out/info.log"; then sed 's/^/    /' "$out/info.log" >> "$report"; else fail "rapidfire info" "$out/info.log"; fi

  local smi=""
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 200 > "$out/nvidia-smi.csv" 2>&1 &
    smi=$!
  fi

  # the example's configs with $epochs epochs, in a folder of their own (the example's data handle, read in place)
  sed "s/\"epochs\": 3/\"epochs\": $epochs/" "$repo/examples/mnist/configs.json" > "$work/configs.json"
  local fit=("$rf" fit --spec "$repo/examples/mnist/MnistSpec.cs" --data "$repo/examples/mnist/datahandle.json" --devices "$devices" --dir "$work/exp")
  "${fit[@]}" --config "$work/configs.json" --experiment warm > "$out/warm.log" 2>&1 || fail "warm-up fit (spec compile)" "$out/warm.log"

  local start end
  start=$(date +%s.%N)
  if "${fit[@]}" --config "$work/configs.json" --experiment hyper > "$out/fit.log" 2>&1; then
    end=$(date +%s.%N); note "- rapidfire fit, 4 configs hyperparallel: $(echo "$end - $start" | bc) s"
    sed -n '/^[╭│├╰]/p' "$out/fit.log" | tail -7 | sed 's/^/    /' >> "$report"
  else fail "rapidfire fit" "$out/fit.log"; fi

  # the same 4 configs one after another inside rapidfire: one fit of one config each (a list group of one)
  start=$(date +%s.%N)
  local ok=1
  for i in 0 1 2 3; do
    "$python" - "$work/configs.json" "$i" > "$work/one-$i.json" <<'EOF'
import itertools, json, sys
group = json.load(open(sys.argv[1]))
kinds, lrs = group["user_knobs"]["model_type"], group["train"]["optimizer"]["args"]["lr"]
kind, lr = list(itertools.product(kinds, lrs))[int(sys.argv[2])]
group["user_knobs"]["model_type"] = kind
group["train"]["optimizer"]["args"]["lr"] = lr
print(json.dumps(group))
EOF
    "${fit[@]}" --config "$work/one-$i.json" --experiment "seq-$i" > "$out/seq-$i.log" 2>&1 || { ok=0; fail "rapidfire fit of config $i alone" "$out/seq-$i.log"; }
  done
  end=$(date +%s.%N)
  [[ $ok == 1 ]] && note "- rapidfire, the same 4 configs one after another (4 fits): $(echo "$end - $start" | bc) s"

  local device=cuda
  [[ $devices == cpu* ]] && device=cpu
  if "$python" "$repo/bench/gpu-run/lightning_mnist.py" "$repo/examples/mnist" "$device" "$epochs" > "$out/lightning.log" 2>&1; then
    note "- peer, 4 configs one after another (bench/gpu-run/lightning_mnist.py):"
    grep '^{' "$out/lightning.log" | sed 's/^/    /' >> "$report"
  else fail "lightning_mnist.py" "$out/lightning.log"; fi

  if [[ -n $smi ]]; then
    kill "$smi" 2> /dev/null
    note "- GPU busy, mean of nvidia-smi samples every 200 ms over the whole run: $(awk -F', ' '{gsub(/ %/, "", $2); s += $2; n++} END {if (n) printf "%.0f%% (%d samples)", s / n, n}' "$out/nvidia-smi.csv")"
  fi
  rm -rf "$work"
  echo "results: $report"
}

case ${1:-} in
  pack) pack ;;
  run) run ;;
  *) echo "usage: bench/gpu-run.sh pack | run" >&2; exit 2 ;;
esac
