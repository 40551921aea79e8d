#!/usr/bin/env bash
# Installs the SDK from BUILD_DIR into a temporary prefix, builds examples/ as an unrelated
# project with find_package(inngest), builds a one-file consumer with pkg-config, and runs them.
set -euo pipefail
build_dir="$1"
source_dir="$2"
build_type="${3:-Debug}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/inngest/inngest.hpp"
test -n "$(find "$work/prefix" -name inngestConfig.cmake)"
test -n "$(find "$work/prefix" -name inngest.pc)"
if find "$work/prefix/include" -name '*.hpp' | xargs grep -l 'boost/beast\|boost/asio\|openssl/' ; then
    echo "installed headers include Beast, Asio or OpenSSL" >&2
    exit 1
fi

# Sanitizer flags must match the library's, so reuse the build's compiler flags.
flags="$(grep -E '^CMAKE_CXX_FLAGS:' "$build_dir/CMakeCache.txt" | cut -d= -f2- || true)"
sanitize="$(grep -E '^INNGEST_SANITIZE:' "$build_dir/CMakeCache.txt" | cut -d= -f2- || true)"
if [[ -n "$sanitize" ]]; then
    flags="$flags -fsanitize=$sanitize"
fi
cmake -S "$source_dir/examples" -B "$work/examples" -G Ninja \
    -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="${sanitize:+-fsanitize=$sanitize}" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$work/examples" -j 2 >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }

# pkg-config consumer.
cat > "$work/consumer.cpp" <<'CPP'
#include <inngest/inngest.hpp>
#include <inngest/testing.hpp>
int main() {
    inngest::Client client({.app_id = "pc", .dev = true});
    client.create_function({.id = "f", .triggers = {inngest::EventTrigger{"x"}}},
                           [](inngest::Context& ctx) {
                               return ctx.step.run("one", [] { return 1; }) + 1;
                           });
    // The installed testing API runs it in process.
    const auto run = inngest::testing::run(client, "f");
    return client.functions().size() == 1 && run.output == 2 && run.steps.size() == 1 ? 0 : 1;
}
CPP
PKG_CONFIG_PATH="$(dirname "$(find "$work/prefix" -name inngest.pc)")" \
    bash -c "c++ $flags ${sanitize:+-fsanitize=$sanitize} \$(pkg-config --cflags inngest) '$work/consumer.cpp' -o '$work/consumer' \$(pkg-config --libs inngest)"
"$work/consumer"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {
    for _ in $(seq 1 100); do
        if curl -fs "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# The minimal service answers introspection and runs its function's first step.
port="$(free_port)"
INNGEST_DEV=1 PORT="$port" "$work/examples/minimal-service" >"$work/minimal.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port/api/inngest"
curl -fs "http://127.0.0.1:$port/api/inngest" | grep -q '"function_count":1'
curl -fs -X POST "http://127.0.0.1:$port/api/inngest?fnId=minimal-greet&stepId=step" \
    -H 'Content-Type: application/json' \
    -d '{"event":{"name":"demo/greet","data":{"name":"Ada"}},"ctx":{"run_id":"r"},"steps":{}}' \
    | grep -q '"data":"Ada"'

# The embedded handler lives next to the host's own route.
port="$(free_port)"
INNGEST_DEV=1 PORT="$port" "$work/examples/embed-in-beast" >"$work/embed.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port/hello"
curl -fs "http://127.0.0.1:$port/api/inngest" | grep -q '"mode":"dev"'

# send-event posts to an event API (a tiny stand-in on loopback) and prints the ids.
port="$(free_port)"
python3 - "$port" >"$work/events.log" 2>&1 <<'PY' &
import http.server, json, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.path == "/e/example-key" and body[0]["name"] == "demo/greet"
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"ids": ["evt-1"], "status": 200}).encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
pids+=($!)
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
ids="$(INNGEST_DEV=1 INNGEST_EVENT_KEY=example-key INNGEST_BASE_URL="http://127.0.0.1:$port" \
    "$work/examples/send-event" demo/greet '{"name":"Ada"}')"
test "$ids" = "evt-1"
echo "package check passed: install, find_package, pkg-config, three examples run"
