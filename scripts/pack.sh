#!/usr/bin/env bash
# Packs every NuGet package of the repository (RapidFire, RapidFire.Host, .Actors, .Spec, .Samples, the RapidFire.Cli
# tool, RapidFire.Templates) into a local folder feed: DIR, .packages/ by default.
#   bash scripts/pack.sh [DIR] [dotnet pack options...]
# The packages have one version (VersionPrefix in Directory.Build.props). NuGet caches a package by id and version, so
# this removes the same version of RapidFire's packages from the NuGet cache: the next restore takes the new ones.
set -euo pipefail
cd "$(dirname "$0")/.."
feed=${1:-.packages}
shift || true
version=$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)
mkdir -p "$feed"
dotnet pack RapidFire.sln -c Release -o "$feed" -v quiet -nologo "$@"
cache=${NUGET_PACKAGES:-$HOME/.nuget/packages}
for package in "$feed"/*.nupkg; do
    id=$(basename "$package" ".$version.nupkg")
    rm -rf "${cache:?}/${id,,}/$version"
done
ls -1 "$feed"/*."$version".nupkg
