#!/usr/bin/env bash
# The packages as a user installs them (issue 17), offline from a local folder feed; scripts/test.sh runs it after the
# test projects. Every step must print what it checks; a failure names the step and shows its output.
#   1. `dotnet pack` of every package into a feed in a temporary folder (scripts/pack.sh);
#   2. a nuget.config there that lists the feed plus the sources the machine already has;
#   3. the RapidFire.Cli tool: installed from the feed, `rapidfire fit` of examples/mnist (1 epoch) and of
#      examples/fortunes (1 epoch, 1 config: the tokenizer packages travel in the tool) from an empty folder;
#   4. the file-based app examples/file-based/mnist.cs, copied into an empty folder: `dotnet run mnist.cs -- 1`;
#   5. the template: `dotnet new install` of RapidFire.Templates (a private hive), `dotnet new rapidfire`, and the
#      commands of its README as they are (fit, test) with the installed tool;
#   6. a linux-x64 publish of the CLI (what scripts/publish.sh makes) holds libtorch and runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/rapidfire-packages.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/step.log

step() { # step NAME COMMAND...: runs it, its output in $log; on failure shows the output and stops
    local name=$1
    shift
    local start=$SECONDS
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "packages: FAILED: $name" >&2
        exit 1
    fi
    echo "packages: ok: $name ($((SECONDS - start)) s)"
}

expect() { # expect WHAT FILE PATTERN [COUNT]: FILE has at least COUNT (1) lines matching PATTERN
    local what=$1 file=$2 pattern=$3 count=${4:-1} found
    found=$(grep -cE "$pattern" "$file" || true)
    if ((found < count)); then
        cat "$file" >&2
        echo "packages: FAILED: $what: $count lines matching '$pattern' expected in $file, $found found" >&2
        exit 1
    fi
    echo "packages: ok: $what ($found lines match '$pattern')"
}

feed=$work/feed
step "dotnet pack into $feed" bash scripts/pack.sh "$feed"
for id in RapidFire RapidFire.Host RapidFire.Actors RapidFire.Spec RapidFire.Samples RapidFire.Cli RapidFire.Cli.linux-x64 RapidFire.Templates; do
    [[ -f $feed/$id.0.1.0.nupkg ]] || { ls "$feed" >&2; echo "packages: FAILED: $id.0.1.0.nupkg is not in the feed" >&2; exit 1; }
done
cat >"$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="rapidfire-local" value="$feed" />
  </packageSources>
</configuration>
CONFIG

# 3. the tool, and a fit from an empty folder
tools=$work/tools
step "dotnet tool install RapidFire.Cli" dotnet tool install RapidFire.Cli --version 0.1.0 --tool-path "$tools" --configfile "$work/nuget.config"
rapidfire=$tools/rapidfire
step "rapidfire --help" "$rapidfire" --help
expect "rapidfire lists its verbs" "$log" '^ +(validate|fit|resume|worker|runs|plot|dashboard|test|predict|info) ' 10
mkdir "$work/empty"
sed 's/"epochs": 3/"epochs": 1/' examples/mnist/configs.json >"$work/mnist-1-epoch.json"
step "rapidfire fit of examples/mnist from an empty folder" \
    bash -c "cd '$work/empty' && '$rapidfire' fit --spec '$repo/examples/mnist/MnistSpec.cs' --data '$repo/examples/mnist/datahandle.json' --config '$work/mnist-1-epoch.json' --experiment tool"
expect "the tool's fit completed its 4 runs" "$work/empty/rapidfire-experiments/tool/runs.csv" '^[1-4],Completed,' 4

# the text example's GPT-2 tokenizer (Microsoft.ML.Tokenizers and its data package) travels in the tool
sed -e 's/"epochs": 4/"epochs": 1/' -e 's/"model_type": \["bag", "conv"\]/"model_type": "bag"/' -e 's/"lr": \[0.003, 0.01\]/"lr": 0.01/' \
    examples/fortunes/configs.json >"$work/fortunes-1-epoch.json"
step "rapidfire fit of examples/fortunes (GPT-2 tokens) from an empty folder" \
    bash -c "cd '$work/empty' && '$rapidfire' fit --spec '$repo/examples/fortunes/FortunesSpec.cs' --data '$repo/examples/fortunes/datahandle.json' --config '$work/fortunes-1-epoch.json' --experiment text"
expect "the tool's text fit completed its run" "$work/empty/rapidfire-experiments/text/runs.csv" '^1,Completed,' 1

# 4. the file-based app, from an empty folder
mkdir "$work/app"
cp examples/file-based/mnist.cs "$work/nuget.config" "$work/app/"
step "dotnet run mnist.cs -- 1 (the file-based app)" bash -c "cd '$work/app' && dotnet run mnist.cs -- 1"
expect "the file-based app trained 4 runs" "$log" '^[1-4] +Completed ' 4
expect "the file-based app tested 4 runs" "$log" '^  run [1-4]: loss [0-9.]+, top1_accuracy 0\.[0-9]+' 4

# 5. the template, its README's commands as they are
hive=$work/hive
step "dotnet new install RapidFire.Templates" dotnet new install "$feed/RapidFire.Templates.0.1.0.nupkg" --debug:custom-hive "$hive"
step "dotnet new rapidfire" dotnet new rapidfire -o "$work/scaffold" --debug:custom-hive "$hive"
for file in MnistPixelsSpec.cs configs.json datahandle.json README.md data/train.csv data/validation.csv data/test.csv; do
    [[ -f $work/scaffold/$file ]] || { echo "packages: FAILED: dotnet new rapidfire did not write $file" >&2; exit 1; }
done
step "the template's fit (its README's command)" \
    bash -c "cd '$work/scaffold' && '$rapidfire' fit --spec MnistPixelsSpec.cs --data datahandle.json --config configs.json --experiment pixels"
expect "the template's fit completed its 4 runs" "$work/scaffold/rapidfire-experiments/pixels/runs.csv" '^[1-4],Completed,' 4
step "the template's test (its README's command)" bash -c "cd '$work/scaffold' && '$rapidfire' test --experiment pixels"
expect "the template's test scored 4 runs" "$work/scaffold/rapidfire-experiments/pixels/test/summary.csv" '^[1-4],' 4

# 6. a platform publish of the CLI (scripts/publish.sh, here without its ReadyToRun compile) carries libtorch: the SDK
#    leaves a PrivateAssets="all" backend out of `dotnet publish` unless it is marked Publish="true"
step "dotnet publish src/Host -r linux-x64" dotnet publish src/Host -c Release -r linux-x64 -p:PublishReadyToRun=false -o "$work/publish" -nologo -v q
for lib in libtorch.so libtorch_cpu.so libc10.so libLibTorchSharp.so; do
    [[ -f $work/publish/$lib ]] || { echo "packages: FAILED: the published CLI lacks $lib" >&2; exit 1; }
done
step "the published CLI validates examples/mnist" "$work/publish/rapidfire" validate --spec examples/mnist/MnistSpec.cs \
    --data examples/mnist/datahandle.json --config examples/mnist/configs.json
echo "packages: all checks passed"
