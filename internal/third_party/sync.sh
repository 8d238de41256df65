#!/usr/bin/env bash
# Writes kustomize-api/ from the upstream module sigs.k8s.io/kustomize/api
# (the version go.mod requires, from the Go module proxy) and
# kustomize-api.patch: its Go files other than tests and testutils, its
# go.mod and LICENSE, the patch applied, then gofmt (as make fmt-check wants). With -check it writes
# nothing and fails when kustomize-api/ differs from that.
set -euo pipefail
cd "$(dirname "$0")"

version=$(sed -n 's|^[[:space:]]*sigs.k8s.io/kustomize/api \(v[^ ]*\).*|\1|p' ../../go.mod | head -1)
[ -n "$version" ] || { echo "sync.sh: no sigs.k8s.io/kustomize/api requirement in go.mod" >&2; exit 1; }
upstream=$(cd / && go mod download -json "sigs.k8s.io/kustomize/api@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[ -d "$upstream" ] || { echo "sync.sh: go mod download sigs.k8s.io/kustomize/api@$version failed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$upstream" && find . -type f \( \( -name '*.go' ! -name '*_test.go' \) -o -name LICENSE -o -name go.mod \) \
  ! -path './testutils/*' ! -path '*/testdata/*' -print0 | tar --null -cf - -T -) | tar -xf - -C "$tmp"
chmod -R u+w "$tmp"
patch -s -p1 -d "$tmp" < kustomize-api.patch
gofmt -w "$tmp"
gofmt -w "$tmp" # a second pass: gofmt settles some doc comments in two

if [ "${1:-}" = -check ]; then
  if ! diff -r "$tmp" kustomize-api; then
    echo "sync.sh: kustomize-api/ is not sigs.k8s.io/kustomize/api@$version with kustomize-api.patch; run internal/third_party/sync.sh" >&2
    exit 1
  fi
  exit 0
fi
rm -rf kustomize-api
cp -r "$tmp" kustomize-api
echo "kustomize-api/: sigs.k8s.io/kustomize/api@$version with kustomize-api.patch"
