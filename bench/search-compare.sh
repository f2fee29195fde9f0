#!/usr/bin/env bash
# Issue 18: random search against Population Based Training on the README's MNIST example under equal compute (the
# same 8 runs' worth of epochs, 4 each), for several seeds. TPE is not written yet.
#   bash bench/search-compare.sh [SEEDS]     (default 3) writes bench/out/search-compare.md
# Each side: `rapidfire fit` of examples/mnist with --seed S; random draws lr log-uniformly from [1e-4, 1e-2] and dropout
# from [0.0, 0.2] (8 samples, group seed S); pbt starts from the grid dropout [0.0, 0.2] x lr [1e-4, 3e-4, 1e-3, 1e-2]
# and exploits every epoch (quantile 0.25, lr x 0.5 or x 2, dropout resampled; group seed S). Figures: the best final
# validation top-1 of the fit, the epochs it trained in all (a warm clone's inherited epochs are not counted), and
# the fit's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
work=$(mktemp -d /tmp/rapidfire-search.XXXX)
trap 'rm -rf "$work"' EXIT
dotnet build src/Host -c Release -v q -nologo > /dev/null
rf=(dotnet "$PWD/src/Host/bin/Release/net10.0/rapidfire.dll")
common='"user_knobs": { "model_type": "mlp", "hidden": 128, "dropout": DROPOUT }, "named_metrics": ["top1_accuracy"]'
train='"train": { "epochs": 4, "batch_size": 64, "optimizer": { "name": "Adam", "args": { "lr": LR } } }'
out=bench/out/search-compare.md
mkdir -p bench/out
summary() { # experiment folder -> best val top1, trained epochs
  python3 - "$1" <<'PY'
import csv, re, sys, os
folder = sys.argv[1]
runs = list(csv.DictReader(open(os.path.join(folder, "runs.csv"))))
best = max(float(r["val_top1_accuracy"]) for r in runs if r["val_top1_accuracy"])
inherited = 0
log = os.path.join(folder, "ic-log.csv")
if os.path.exists(log):
    for op in csv.DictReader(open(log)):
        m = re.match(r"pbt at epoch (\d+):", op.get("origin", ""))
        if m and op["status"] == "applied": inherited += int(m.group(1))
print(f"{best:.3f} {sum(int(r['epochs_done']) for r in runs) - inherited}")
PY
}
echo "| seed | random: best val top-1 | random: epochs | random: s | pbt: best val top-1 | pbt: epochs | pbt: s |" > "$out"
echo "|---|---|---|---|---|---|---|" >> "$out"
for seed in $(seq 1 "$seeds"); do
  echo "{ \"search\": \"random\", \"samples\": 8, \"seed\": $seed, ${common/DROPOUT/[0.0, 0.2]}, ${train/LR/{ \"range\": [0.0001, 0.01], \"log\": true \}} }" > "$work/random.json"
  echo "{ \"search\": \"pbt\", \"seed\": $seed, ${common/DROPOUT/[0.0, 0.2]}, ${train/LR/[0.0001, 0.0003, 0.001, 0.01]},
    \"pbt\": { \"perturbation_interval\": 1, \"quantile\": 0.25, \"metric\": \"top1_accuracy\", \"mode\": \"max\",
              \"mutations\": { \"optimizer.args.lr\": { \"factors\": [0.5, 2.0] }, \"dropout\": \"resample\" } } }" > "$work/pbt.json"
  row="| $seed"
  for side in random pbt; do
    start=$(date +%s.%N)
    "${rf[@]}" fit --spec examples/mnist/MnistSpec.cs --data examples/mnist/datahandle.json --config "$work/$side.json" \
      --experiment "$side-$seed" --dir "$work/exp" --seed "$seed" > "$work/$side-$seed.log" 2>&1 || { cat "$work/$side-$seed.log"; exit 1; }
    end=$(date +%s.%N)
    read -r best epochs < <(summary "$work/exp/$side-$seed")
    row="$row | $best | $epochs | $(printf %.1f "$(echo "$end - $start" | bc)")"
  done
  echo "$row |" | tee -a "$out"
done
echo "written: $out"
