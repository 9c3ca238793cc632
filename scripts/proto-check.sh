#!/bin/sh
# Fails when the committed generated codecs (src/wire/gen/) differ from what src/wire/generate-pb.sh makes of the
# .proto files now: a .proto changed without `npm run proto`, a generated file edited by hand, or a stale one
# left behind. Local only (protons from node_modules), a few seconds.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh src/wire/generate-pb.sh "$tmp"
if ! diff -r -u src/wire/gen "$tmp"; then
  echo 'proto:check: src/wire/gen/ does not match src/wire/*.proto; run `npm run proto` and commit the result' >&2
  exit 1
fi
echo 'proto:check: src/wire/gen/ matches src/wire/*.proto'
