#!/usr/bin/env bash
# Before/after a change, whole processes side by side in one hyperfine run: the published CLI (scripts/publish.sh) at
# BEFORE (a git revision) and at the working tree, on bench/insitu.sh's files (in-situ MNIST MLP, 3,000 rows).
#   bash bench/compare.sh BEFORE [RUNS]     writes its tables to bench/out/compare-*.md
# Figures: a 10-epoch fit, 4 configs x 10 epochs, and a one-minibatch fit (start to exit). Needs ../shared/data/mnist-10k
# and hyperfine (apt-get). Publishing both sides takes minutes; nothing else should run while hyperfine measures.
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: bench/compare.sh BEFORE [RUNS]}
runs=${2:-5}
work=$(mktemp -d /tmp/rapidfire-compare.XXXX)
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/src" "$before"
(cd "$work/src" && bash scripts/publish.sh "$work/before" >/dev/null)
bash scripts/publish.sh "$work/after" >/dev/null
dotnet build bench/RapidFire.Bench -c Release -v q -nologo >/dev/null
B="dotnet $PWD/bench/RapidFire.Bench/bin/Release/net10.0/RapidFire.Bench.dll"
$B insitu-data "$work/3k" 3000 64
$B insitu-data "$work/64" 64 64
for d in 3k 64; do echo "{\"locators\": {\"train\": \"$work/$d/train.csv\", \"validation\": \"$work/$d/validation.csv\"}}" > "$work/h$d.json"; done
for e in 1 10; do
  echo "{\"search\": \"grid\", \"user_knobs\": {\"hidden\": 256}, \"train\": {\"epochs\": $e, \"batch_size\": 64, \"optimizer\": {\"name\": \"Adam\", \"args\": {\"lr\": 0.001}}}, \"named_metrics\": [\"top1_accuracy\"]}" > "$work/one-$e.json"
done
echo "{\"search\": \"grid\", \"user_knobs\": {\"hidden\": 256}, \"train\": {\"epochs\": 10, \"batch_size\": 64, \"optimizer\": {\"name\": \"Adam\", \"args\": {\"lr\": [0.001, 0.002, 0.003, 0.004]}}}, \"named_metrics\": [\"top1_accuracy\"]}" > "$work/four-10.json"
spec=$PWD/examples/mnist-insitu/MnistPixelsSpec.cs
# one experiment folder per side, removed before each timed run (hyperfine -N runs no shell)
fit() { echo "dotnet $work/$1/rapidfire.dll fit --spec $spec --data $work/h$2.json --config $work/$3.json --experiment e --dir $work/exp-$1"; }
for side in before after; do rm -rf "$work/exp-$side"; $(fit $side 3k one-1) >/dev/null; done # each side compiles the spec once
out=bench/out
mkdir -p "$out"
hf() {
  local name=$1 h=$2 c=$3
  hyperfine -N --runs "$runs" --warmup 1 --export-markdown "$out/compare-$name.md" \
    --prepare "rm -rf $work/exp-before" -n "before ($before), $name" "$(fit before "$h" "$c")" \
    --prepare "rm -rf $work/exp-after" -n "after, $name" "$(fit after "$h" "$c")"
}
hf 10-epochs 3k one-10
hf four-configs 3k four-10
hf one-minibatch 64 one-1
