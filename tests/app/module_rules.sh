#!/usr/bin/env bash
# The layering rules of app/README.md, checked on the source: a module includes no other
# module's headers, constructs or commits no transaction of its own (units of work go through
# core::db::transact), and the SDK includes nothing of the app. Prints each breach.
set -uo pipefail
root="${1:?usage: module_rules.sh <repository root>}"
cd "$root" || exit 2
failed=0

for dir in app/modules/*/; do
    module="$(basename "$dir")"
    if hits="$(grep -rnE '#include "modules/' "$dir" | grep -v "#include \"modules/$module/")"; then
        echo "module $module includes another module's header:"
        echo "$hits"
        failed=1
    fi
done

if hits="$(grep -rnE '\bTransaction [A-Za-z_]+ ?[({]' app/modules)"; then
    echo "a module constructs its own transaction (use core::db::transact):"
    echo "$hits"
    failed=1
fi

if hits="$(grep -rnE '\.commit\(\)' app/modules)"; then
    echo "a module commits a transaction itself (transact commits when its work returns):"
    echo "$hits"
    failed=1
fi

if hits="$(grep -rnE '#include "(core|modules)/' sdk)"; then
    echo "the SDK includes app headers:"
    echo "$hits"
    failed=1
fi

[[ $failed == 0 ]] && echo "module rules hold"
exit $failed
