#!/usr/bin/env bash
# Build Argo's executor, argoexec, from upstream's own tree at the pinned tag.
#
# `go install .../cmd/argoexec@$ARGO_VERSION` fails on linux: in Argo's git tree
# workflow/executor/osspecific/signal_linux.go is a symbolic link to signal_darwin.go,
# and Go module zips leave symbolic links out (golang.org/issue/27093), so the module has
# no linux Setpgid and command_unix.go:37 does not compile. This script copies the module
# the Go proxy serves and puts back exactly the symbolic links upstream's git tree has at
# the tag (listed in argo-$ARGO_VERSION-symlinks.tsv, taken from `git ls-tree -r
# $ARGO_VERSION | grep ^120000`); it changes no file's content. Dependencies come from the
# Go proxy (GOFLAGS=-mod=mod). The source copy stays in a fixed folder so Go's build cache
# makes a second build fast.
#
# Usage: scripts/argo-control-plane/build-argoexec.sh [--clean] [OUT_DIR]
# OUT_DIR defaults to $CONVEYOR_ARGO_BIN or ~/.cache/conveyor/argo-control-plane/bin.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
clean=0
if [[ "${1:-}" == --clean ]]; then clean=1; shift; fi
out="${1:-${CONVEYOR_ARGO_BIN:-$HOME/.cache/conveyor/argo-control-plane/bin}}"
export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "build-argoexec.sh: go not found (install Go >= 1.25 or put it on PATH)" >&2; exit 2; }
links="$here/argo-$ARGO_VERSION-symlinks.tsv"
if [[ ! -f "$links" ]]; then
  echo "build-argoexec.sh: no list of upstream's symbolic links for $ARGO_VERSION ($links);" >&2
  echo "  write it from a git clone: git ls-tree -r $ARGO_VERSION | grep ^120000 (path, tab, target)" >&2
  exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [[ $clean == 1 ]]; then rm -f "$out/argoexec"; fi
if [[ -x "$out/argoexec" ]]; then echo "argoexec already in $out"; exit 0; fi
t0=$(date +%s)
echo "== argoexec $ARGO_VERSION (module from the Go proxy, upstream's symbolic links restored)"
module="$(go mod download -json "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
src="$(dirname "$out")/src/argo-workflows-$ARGO_VERSION"
rm -rf "$src"
mkdir -p "$(dirname "$src")"
cp -r "$module" "$src"
chmod -R u+w "$src"
restored=0
while IFS=$'\t' read -r path target; do
  [[ -z "$path" || "$path" == \#* ]] && continue
  if [[ -e "$src/$path" || -L "$src/$path" ]]; then
    echo "build-argoexec.sh: $path is already in the module; the list does not match $ARGO_VERSION" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$src/$path")"
  ln -s "$target" "$src/$path"
  restored=$((restored + 1))
done < "$links"
echo "restored $restored symbolic links"
cd "$src"
commit="$(sed -n 's/^# .*(commit \([0-9a-f]*\)).*/\1/p' "$links")"
pkg=github.com/argoproj/argo-workflows/v4
ldflags="-X $pkg.version=$ARGO_VERSION -X $pkg.gitCommit=$commit -X $pkg.gitTag=$ARGO_VERSION -X $pkg.gitTreeState=clean"
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -buildvcs=false -ldflags "$ldflags" -o "$out/argoexec" ./cmd/argoexec
echo "argoexec built into $out in $(( $(date +%s) - t0 ))s"
