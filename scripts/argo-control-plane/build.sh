#!/usr/bin/env bash
# Build the real Argo control plane used by tests/argoreal from source:
# kine, kube-apiserver, workflow-controller, argoexec, argo.
# Versions come from versions.env beside this script. Go's module and build
# caches make a second run fast; `--clean` removes the binaries first.
#
# Usage: scripts/argo-control-plane/build.sh [--clean] [--required-only] [--only NAME] [OUT_DIR]
# --only NAME builds that one binary (e.g. `--only argo`), failing when it does not build.
# Required (the tests need them): kine, kube-apiserver, workflow-controller, Argo's CRDs.
# Optional, built last and reported when they fail: argoexec (not from the module alone:
# workflow/executor/osspecific/signal_linux.go is a git symlink, which module zips leave
# out, so command_unix.go:37 has no Setpgid; build-argoexec.sh builds it from the module with
# the tag's symlinks restored, see docs/argo-real.md), argo (the Argo Server;
# tests/argoreal/test_server_client.py needs it, CI builds it with --only argo).
# OUT_DIR defaults to $CONVEYOR_ARGO_BIN or ~/.cache/conveyor/argo-control-plane/bin.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
clean=0
optional=1
only=""
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --clean) clean=1 ;;
    --required-only) optional=0 ;;
    --only)
      only="${2:-}"
      case "$only" in
        workflow-controller|argoexec|argo) shift ;;
        *) echo "build.sh: --only expects one of workflow-controller, argoexec, argo; found '${only}' (hint: kine and kube-apiserver come with the required build)" >&2; exit 2 ;;
      esac ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out="${1:-${CONVEYOR_ARGO_BIN:-$HOME/.cache/conveyor/argo-control-plane/bin}}"
export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "build.sh: go not found (install Go >= 1.25 or put it on PATH)" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [[ $clean == 1 && -z "$only" ]]; then rm -f "$out"/{kine,kube-apiserver,workflow-controller,argoexec,argo,VERSIONS}; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
stamp() { date +%s; }

t0=$(stamp)

# Argo: the v4 module has no replace directives, so go install works.
argo_install() {
  echo "== $1 $ARGO_VERSION"
  if [[ "$1" == argo ]]; then argo_cli; return; fi
  CGO_ENABLED=0 GOBIN="$out" go install "github.com/argoproj/argo-workflows/v4/cmd/$1@$ARGO_VERSION"
}
# cmd/argo (with `argo server`) embeds the UI's ui/dist/app, which the module does not ship
# (it is built by yarn), so `go install` fails. As Argo's Makefile does for a build without
# the UI (STATIC_FILES=false), a copy of the module gets a placeholder index.html.
argo_cli() {
  local dir
  dir="$(go mod download -json "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
  cp -r "$dir" "$work/argo-src"
  chmod -R u+w "$work/argo-src"
  mkdir -p "$work/argo-src/ui/dist/app"
  echo "Argo Workflows built without its UI (conveyor's test control plane)" > "$work/argo-src/ui/dist/app/index.html"
  # -trimpath: the copy's folder changes each run and must not change Go's cache keys.
  # The version is what Argo's Makefile links in (`argo version` says v0.0.0 otherwise).
  (cd "$work/argo-src" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-X github.com/argoproj/argo-workflows/v4.version=$ARGO_VERSION -X github.com/argoproj/argo-workflows/v4.gitTag=$ARGO_VERSION" \
    -o "$out/argo" ./cmd/argo)
}

# One Argo binary on its own (a failure is an error here, not a report).
# An argo binary that does not say the pinned version (another pin, or built before the
# version was linked in) is rebuilt. It says "v4.0.5+unknown": the module has no git commit.
if [[ -x "$out/argo" ]] && ! "$out/argo" version --short 2>/dev/null | grep -qx "argo: $ARGO_VERSION+unknown"; then
  rm -f "$out/argo"
fi
if [[ -n "$only" ]]; then
  if [[ $clean == 1 ]]; then rm -f "$out/$only"; fi
  if [[ ! -x "$out/$only" ]]; then argo_install "$only"; fi
  echo "$only built into $out in $(( $(stamp) - t0 ))s"
  exit 0
fi
# kine (its sqlite driver needs cgo)
if [[ ! -x "$out/kine" ]]; then
  echo "== kine $KINE_VERSION"
  CGO_ENABLED=1 GOBIN="$out" go install "github.com/k3s-io/kine@$KINE_VERSION"
fi

if [[ ! -x "$out/workflow-controller" ]]; then argo_install workflow-controller; fi

# kube-apiserver: k8s.io/kubernetes's go.mod replaces its staging modules with
# local paths, which `go install pkg@version` refuses. A wrapper module requires
# k8s.io/kubernetes and replaces each staging module with the matching v0.X.Y.
# Rebuilt when it reports another version (an older build said v0.0.0: no ldflags).
if [[ "$("$out/kube-apiserver" --version 2>/dev/null)" != "Kubernetes $KUBERNETES_VERSION" ]]; then
  echo "== kube-apiserver $KUBERNETES_VERSION"
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  modfile="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  mkdir -p "$work/wrap"
  cd "$work/wrap"
  {
    echo "module conveyor.test/kube-apiserver-wrapper"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$modfile" \
      | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  go mod tidy -e >/dev/null 2>&1 || true
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" 2>/dev/null || true
  go mod tidy -e
  # The version /version reports (Kubernetes' own build sets these; without them v0.0.0).
  minor="${KUBERNETES_VERSION#v1.}"
  kube_ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
    kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  CGO_ENABLED=0 go build -ldflags "$kube_ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  cd "$here"
fi

# Argo's CRDs from the same module
crd_dir="$(go mod download -json "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')/manifests/base/crds/minimal"
mkdir -p "$out/crds"
cp "$crd_dir"/*.yaml "$out/crds/"
chmod u+w "$out/crds"/*.yaml

{
  echo "ARGO_VERSION=$ARGO_VERSION"
  echo "KUBERNETES_VERSION=$KUBERNETES_VERSION"
  echo "KINE_VERSION=$KINE_VERSION"
  echo "GO_VERSION=$(go env GOVERSION)"
} > "$out/VERSIONS"
echo "required binaries built into $out in $(( $(stamp) - t0 ))s"

if [[ $optional == 1 ]]; then
  # argoexec: from upstream's tree (the proxy's module lacks a symlinked linux file); see build-argoexec.sh
  if [[ ! -x "$out/argoexec" ]] && ! "$here/build-argoexec.sh" "$out"; then
    echo "build.sh: optional argoexec $ARGO_VERSION did not build (see above); only tests/argoreal/test_argoexec.py needs it" >&2
  fi
  for cmd in argoexec argo; do
    if [[ ! -x "$out/$cmd" ]] && ! argo_install "$cmd"; then
      echo "build.sh: optional $cmd $ARGO_VERSION did not build (see above); the tests do not need it" >&2
    fi
  done
  echo "all done in $(( $(stamp) - t0 ))s"
fi
