#!/usr/bin/env bash
# Writes each case's golden.yaml (or golden.err) from the upstream kustomize
# CLI, unpatched, at the kustomize/api version go.mod requires: the one
# `make bench-tools` builds into bin/bench/kustomize. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
kustomize=${KUSTOMIZE:-../../../../bin/bench/kustomize}
"$kustomize" version
for c in references:references/overlay many:many/overlay nodup-namespaces:nodup-namespaces \
         dup-same-file:dup-same-file dup-across-files:dup-across-files dup-cluster-scoped:dup-cluster-scoped; do
  name=${c%%:*} dir=${c#*:}
  rm -f "$name/golden.yaml" "$name/golden.err"
  if out=$("$kustomize" build "$dir" 2>&1); then
    printf '%s\n' "$out" > "$name/golden.yaml"
  else
    printf '%s\n' "$out" | sed -n "s/.*\(may not add resource with an already registered id: [^']*\).*/\1/p" > "$name/golden.err"
    [ -s "$name/golden.err" ] || { echo "$name: unexpected error: $out" >&2; exit 1; }
  fi
done
