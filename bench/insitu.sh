#!/usr/bin/env bash
# Issue 14, whole processes: `rapidfire fit` of the in-situ MNIST MLP vs the hand-written TorchSharp loop
# (bench/RapidFire.Bench/InSitu.cs), timed by hyperfine side by side. Needs ../shared/data/mnist-10k, hyperfine (apt-get).
#   bash bench/insitu.sh [RUNS]     writes its tables to bench/out/insitu-*.md
# `rapidfire` is the CLI as scripts/publish.sh installs it (compiled ahead of time; the first publish takes minutes);
# one pair compares it with the JIT-compiled build of `dotnet build`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
dotnet build src/Host -c Release -v q -nologo >/dev/null
dotnet build bench/RapidFire.Bench -c Release -v q -nologo >/dev/null
bash scripts/publish.sh .tools/rapidfire >/dev/null
R="dotnet $PWD/.tools/rapidfire/rapidfire.dll"
RJ="dotnet $PWD/src/Host/bin/Release/net10.0/rapidfire.dll"
B="dotnet $PWD/bench/RapidFire.Bench/bin/Release/net10.0/RapidFire.Bench.dll"
work=$(mktemp -d /tmp/rapidfire-insitu.XXXX)
out=bench/out
mkdir -p "$out"
$B insitu-data "$work/3k" 3000 64
$B insitu-data "$work/30k" 3000 64 10
$B insitu-data "$work/64" 64 64
for d in 3k 30k 64; do echo "{\"locators\": {\"train\": \"$work/$d/train.csv\", \"validation\": \"$work/$d/validation.csv\"}}" > "$work/h$d.json"; done
for e in 1 10; do
  echo "{\"search\": \"grid\", \"user_knobs\": {\"hidden\": 256}, \"train\": {\"epochs\": $e, \"batch_size\": 64, \"optimizer\": {\"name\": \"Adam\", \"args\": {\"lr\": 0.001}}}, \"named_metrics\": [\"top1_accuracy\"]}" > "$work/one-$e.json"
  echo "{\"search\": \"grid\", \"user_knobs\": {\"hidden\": 256}, \"train\": {\"epochs\": $e, \"batch_size\": 64, \"optimizer\": {\"name\": \"Adam\", \"args\": {\"lr\": [0.001, 0.002, 0.003, 0.004]}}}, \"named_metrics\": [\"top1_accuracy\"]}" > "$work/four-$e.json"
done
echo 'rapidfire { journal.provider = memory, save-strategy = none }' > "$work/off.conf"
fit() { echo "$R fit --spec examples/mnist-insitu/MnistPixelsSpec.cs --data $work/h$1.json --config $work/$2.json --experiment e\$(date +%s%N) --dir $work/exp $3"; }
loop() { echo "$B handloop $work/$1/train.csv $work/$1/validation.csv $2 ${3:-1}"; }
# a first fit compiles the spec into the on-disk cache, as a user's first fit does
eval "$(fit 3k one-1 "")" >/dev/null
hf() { local name=$1; shift; hyperfine --runs "$runs" --warmup 1 --export-markdown "$out/insitu-$name.md" "$@"; }
hf 10-epochs -n "rapidfire fit, 10 epochs" "$(fit 3k one-10 "")" -n "hand-written, 10 epochs" "$(loop 3k 10)"
hf 1-epoch -n "rapidfire fit, 1 epoch" "$(fit 3k one-1 "")" -n "hand-written, 1 epoch" "$(loop 3k 1)"
eval "$(fit 3k one-1 "" | sed "s|^$R|$RJ|")" >/dev/null # the build's own compile-cache entry
hf published -n "rapidfire fit, 1 epoch, published (ReadyToRun)" "$(fit 3k one-1 "")" -n "rapidfire fit, 1 epoch, dotnet build (JIT)" "$(fit 3k one-1 "" | sed "s|^$R|$RJ|")"
# command -> first trained minibatch, at most: a whole fit of one minibatch (64 rows, 1 epoch), start to exit
hf first-minibatch -n "rapidfire fit, one minibatch, published" "$(fit 64 one-1 "")" -n "rapidfire fit, one minibatch, dotnet build" "$(fit 64 one-1 "" | sed "s|^$R|$RJ|")"
hf persistence -n "rapidfire fit, persistence on" "$(fit 3k one-10 "")" -n "rapidfire fit, persistence off" "$(fit 3k one-10 "--settings $work/off.conf")"
hf four-configs -n "rapidfire fit, 4 configs x 10 epochs" "$(fit 3k four-10 "")" -n "hand-written x 4, 10 epochs" "$(loop 3k 10 4)"
hf 30k -n "rapidfire fit, 30,000 rows, 1 epoch" "$(fit 30k one-1 "--settings $work/off.conf")" -n "hand-written, 30,000 rows, 1 epoch" "$(loop 30k 1)"
hf validate -n "rapidfire validate, 30,000 rows" "$R validate --spec examples/mnist-insitu/MnistPixelsSpec.cs --data $work/h30k.json --config $work/one-1.json"
for side in "$(fit 30k one-1 "--settings $work/off.conf")" "$(loop 30k 1)" "$R validate --spec examples/mnist-insitu/MnistPixelsSpec.cs --data $work/h30k.json --config $work/one-1.json"; do
  eval "/usr/bin/time -f 'peak %M KB, %e s: ${side%% --*}' $side" 2>&1 >/dev/null | tail -1
done | tee "$out/insitu-memory.txt"
# The README's PNG example: one CNN config, steady epochs against the loop that decodes the PNGs once
for e in 1 4; do
  echo "{\"search\": \"grid\", \"user_knobs\": {\"model_type\": \"cnn\", \"hidden\": 128, \"dropout\": 0.1}, \"train\": {\"epochs\": $e, \"batch_size\": 64, \"optimizer\": {\"name\": \"Adam\", \"args\": {\"lr\": 0.003}}}, \"named_metrics\": [\"top1_accuracy\"]}" > "$work/cnn-$e.json"
done
png() { echo "$R fit --spec examples/mnist/MnistSpec.cs --data examples/mnist/datahandle.json --config $work/$1.json --experiment e\$(date +%s%N) --dir $work/exp $2"; }
hf cnn-4-epochs -n "rapidfire fit, CNN, 4 epochs" "$(png cnn-4 "")" -n "hand-written CNN, 4 epochs" "$B handloop png examples/mnist/data 4"
hf cnn-1-epoch -n "rapidfire fit, CNN, 1 epoch" "$(png cnn-1 "")" -n "hand-written CNN, 1 epoch" "$B handloop png examples/mnist/data 1"
# 32 configs vs 4 on the PNG example, one epoch each (the data is prepared once either way)
lrs() { python3 -c "import sys; n=int(sys.argv[1]); print(', '.join(str(round(0.0005*(i+1), 5)) for i in range(n)))" "$1"; }
for k in 4 32; do
  echo "{\"search\": \"grid\", \"user_knobs\": {\"model_type\": [\"mlp\", \"cnn\"], \"hidden\": 128, \"dropout\": 0.1}, \"train\": {\"epochs\": 1, \"batch_size\": 64, \"optimizer\": {\"name\": \"Adam\", \"args\": {\"lr\": [$(lrs $((k / 2)))]}}}, \"named_metrics\": [\"top1_accuracy\"]}" > "$work/k$k.json"
done
hyperfine --runs 2 --export-markdown "$out/insitu-32-vs-4.md" -n "rapidfire fit, 4 configs, 1 epoch" "$(png k4 "--settings $work/off.conf")" -n "rapidfire fit, 32 configs, 1 epoch" "$(png k32 "--settings $work/off.conf")"
# data preparation of 4 configs vs 1 (RowPrep's thread CPU time, in one process)
$B prep "$work/h3k.json" 4 3 | tee "$out/insitu-prep.txt"
rm -rf "$work"
