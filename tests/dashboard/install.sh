#!/usr/bin/env bash
# Installs the pinned playwright-core (npm ci; it drives Debian's /usr/bin/chromium and downloads
# no browser) and the dashboard test into WORK_DIR, unless the same lock is there.
set -euo pipefail
source_dir="$(cd "$(dirname "$0")" && pwd)"
work_dir="$(mkdir -p "$1" && cd "$1" && pwd)"
cp "$source_dir/package.json" "$source_dir/package-lock.json" "$source_dir/dashboard_test.mjs" \
    "$source_dir/walkthrough_shot.mjs" "$work_dir/"
if [[ ! -d "$work_dir/node_modules" ]] ||
    ! cmp -s "$source_dir/package-lock.json" "$work_dir/node_modules/.installed-lock"; then
    (cd "$work_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$source_dir/package-lock.json" "$work_dir/node_modules/.installed-lock"
fi
echo "playwright-core installed in $work_dir"
