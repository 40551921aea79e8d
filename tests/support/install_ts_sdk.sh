#!/usr/bin/env bash
# Copies the TypeScript fixture app and recorder into WORK_DIR and installs the pinned official
# `inngest` npm package there (npm ci), unless the same lock file is already installed.
set -euo pipefail
source_dir="$1"
work_dir="$(mkdir -p "$2" && cd "$2" && pwd)"
recorder="$source_dir/proto-fixtures/recorder"
cp "$recorder/package.json" "$recorder/package-lock.json" "$recorder"/*.mjs "$work_dir/"
if [[ ! -d "$work_dir/node_modules" ]] ||
    ! cmp -s "$recorder/package-lock.json" "$work_dir/node_modules/.installed-lock"; then
    (cd "$work_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$recorder/package-lock.json" "$work_dir/node_modules/.installed-lock"
fi
echo "official TypeScript SDK installed in $work_dir: $(node -p "require('$work_dir/node_modules/inngest/package.json').version")"
