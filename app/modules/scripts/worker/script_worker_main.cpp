// riveredge-script-worker: runs one untrusted script in Duktape and exits.
//
// The Debian build of Duktape has no execution-timeout hook (DUK_USE_EXEC_TIMEOUT_CHECK is off),
// so an endless loop cannot be stopped inside the engine. Each script therefore runs in this
// separate process: the parent (ScriptRunner) kills it at the deadline, the OS limits set here
// are a backstop, and the heap budget below stops an allocation bomb precisely.
//
// stdin: one JSON request {mode: "run"|"validate", code, arguments, context, http_allow_list,
// limits: {memory_bytes, console_bytes, output_bytes, timeout_ms, http_calls}}.
// stdout: one JSON outcome {status, result, console, console_truncated, error, memory_bytes}.

#include "core/http/exchange.hpp"
#include "core/http/host_allow_list.hpp"
#include "core/http/outbound_policy.hpp"
#include "core/json/depth.hpp"
#include "core/text/storable.hpp"

#include <boost/json.hpp>
#include <duktape.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <curl/curl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace json = boost::json;

namespace {

// Allocation accounting: every block carries its size in a header so frees can be credited.
struct HeapBudget {
    std::size_t limit = 0;
    std::size_t used = 0;
    std::size_t peak = 0;
    bool exceeded = false;
};

constexpr std::size_t kHeader = alignof(std::max_align_t);

void* budget_alloc(void* user, duk_size_t size) {
    auto* budget = static_cast<HeapBudget*>(user);
    if (size == 0) {
        return nullptr;
    }
    if (budget->used + size > budget->limit) {
        budget->exceeded = true;
        return nullptr;
    }
    auto* block = static_cast<unsigned char*>(std::malloc(size + kHeader));
    if (block == nullptr) {
        return nullptr;
    }
    std::memcpy(block, &size, sizeof size);
    budget->used += size;
    budget->peak = std::max(budget->peak, budget->used);
    return block + kHeader;
}

void budget_free(void* user, void* pointer) {
    if (pointer == nullptr) {
        return;
    }
    auto* budget = static_cast<HeapBudget*>(user);
    auto* block = static_cast<unsigned char*>(pointer) - kHeader;
    duk_size_t size = 0;
    std::memcpy(&size, block, sizeof size);
    budget->used -= size;
    std::free(block);
}

void* budget_realloc(void* user, void* pointer, duk_size_t size) {
    auto* budget = static_cast<HeapBudget*>(user);
    if (pointer == nullptr) {
        return budget_alloc(user, size);
    }
    if (size == 0) {
        budget_free(user, pointer);
        return nullptr;
    }
    auto* block = static_cast<unsigned char*>(pointer) - kHeader;
    duk_size_t old_size = 0;
    std::memcpy(&old_size, block, sizeof old_size);
    if (size > old_size && budget->used + (size - old_size) > budget->limit) {
        budget->exceeded = true;
        return nullptr;
    }
    auto* grown = static_cast<unsigned char*>(std::realloc(block, size + kHeader));
    if (grown == nullptr) {
        return nullptr;
    }
    std::memcpy(grown, &size, sizeof size);
    budget->used = budget->used - old_size + size;
    budget->peak = std::max(budget->peak, budget->used);
    return grown + kHeader;
}

HeapBudget g_budget;

// Duktape keeps a string's UTF-16 surrogates as three bytes each (ED A0 80 for U+D800), which
// are not UTF-8. A high surrogate followed by a low one is one character and becomes its four
// bytes; a surrogate alone becomes U+FFFD, three bytes for three, so a console line or a result
// is no longer than the engine counted it. Any other byte that is not UTF-8 is left to
// storable_text, which replaces it by U+FFFD too.
std::string surrogates_to_utf8(std::string_view text) {
    const auto byte = [&text](std::size_t at) {
        return static_cast<unsigned char>(text[at]);
    };
    const auto surrogate = [&](std::size_t at, unsigned char first, unsigned char last) {
        return at + 3 <= text.size() && byte(at) == 0xED && byte(at + 1) >= first &&
               byte(at + 1) <= last && (byte(at + 2) & 0xC0U) == 0x80;
    };
    // The ten bits a surrogate carries.
    const auto bits = [&](std::size_t at) {
        return ((byte(at + 1) & 0x0FU) << 6U) | (byte(at + 2) & 0x3FU);
    };
    std::string out;
    out.reserve(text.size());
    for (std::size_t at = 0; at < text.size();) {
        if (surrogate(at, 0xA0, 0xAF) && surrogate(at + 3, 0xB0, 0xBF)) {
            const unsigned point = 0x10000U + (bits(at) << 10U) + bits(at + 3);
            out += static_cast<char>(0xF0U | (point >> 18U));
            out += static_cast<char>(0x80U | ((point >> 12U) & 0x3FU));
            out += static_cast<char>(0x80U | ((point >> 6U) & 0x3FU));
            out += static_cast<char>(0x80U | (point & 0x3FU));
            at += 6;
        } else if (surrogate(at, 0xA0, 0xBF)) {
            out += "\xEF\xBF\xBD";
            at += 3;
        } else {
            out += text[at];
            ++at;
        }
    }
    return out;
}

// Text from the engine as UTF-8 (surrogates_to_utf8, then storable_text).
std::string engine_text(std::string_view text) {
    return riveredge::core::storable_text(surrogates_to_utf8(text));
}

void write_outcome(const json::object& outcome) {
    // The outcome's strings hold what the engine gave them (console lines, error messages): made
    // UTF-8 here, once, or the runner could not read any of it. Serialisation escapes every
    // control character, so this changes nothing but bytes that are not UTF-8.
    const std::string text = engine_text(json::serialize(outcome));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

// Duktape calls this for errors it cannot throw (outside any protected call, or out of memory
// in a critical section). The process is about to end; report and leave.
void fatal_handler(void*, const char* message) {
    const bool memory = g_budget.exceeded;
    write_outcome(json::object{
        {"status", memory ? "memory_exceeded" : "failed"},
        {"error", json::object{{"message", memory ? "the script exceeded its memory limit"
                                                  : std::string("engine failure: ") +
                                                        (message ? message : "unknown")}}},
        {"memory_bytes", g_budget.peak}});
    std::_Exit(3);
}

struct RunState {
    json::array console;
    std::size_t console_bytes = 0;
    std::size_t console_limit = 0;
    bool console_truncated = false;
    std::vector<std::string> http_allow_list;
    // The deployment's outbound policy (public addresses on the default ports unless the
    // request brings the app's).
    std::unique_ptr<riveredge::core::OutboundPolicy> outbound =
        std::make_unique<riveredge::core::OutboundPolicy>();
    int http_calls_left = 0;
    std::chrono::steady_clock::time_point deadline;
};

RunState g_state;

// Duktape reports errors with longjmp, which skips C++ destructors. So the native functions
// below keep non-trivial C++ objects either in these globals or in helpers that finish before
// any Duktape call that can throw.
std::string g_line;
std::string g_http_body;
std::string g_http_error;
long g_http_status = 0;

// Arguments as one console line into g_line: strings as they are, everything else as JSON.
// Strings are taken with their length: a NUL in one is a character, not its end (the run's
// console is made storable later). Runs under duk_safe_call, since JSON encoding throws for
// cyclic values.
duk_ret_t format_arguments(duk_context* ctx, void*) {
    const duk_idx_t count = duk_get_top(ctx);
    for (duk_idx_t i = 0; i < count; ++i) {
        if (i > 0) {
            g_line += ' ';
        }
        if (duk_is_string(ctx, i)) {
            duk_size_t length = 0;
            const char* text = duk_get_lstring(ctx, i, &length);
            g_line.append(text, length);
        } else if (duk_is_undefined(ctx, i) || duk_is_function(ctx, i)) {
            g_line += duk_safe_to_string(ctx, i);
        } else {
            duk_dup(ctx, i);
            const char* encoded = duk_json_encode(ctx, -1);
            g_line += encoded != nullptr ? encoded : "undefined";
            duk_pop(ctx);
        }
    }
    return 0;
}

void append_console(const char* level, const std::string& line) {
    if (g_state.console_truncated) {
        return;
    }
    if (g_state.console_bytes + line.size() > g_state.console_limit) {
        g_state.console_truncated = true;
        return;
    }
    g_state.console_bytes += line.size();
    g_state.console.push_back(json::object{{"level", level}, {"message", line}});
}

void capture_line(duk_context* ctx, const char* level) {
    g_line.clear();
    if (duk_safe_call(ctx, format_arguments, nullptr, duk_get_top(ctx), 0) != DUK_EXEC_SUCCESS) {
        g_line = "[unprintable value]";
    }
    append_console(level, g_line);
}

duk_ret_t console_write(duk_context* ctx) {
    duk_push_current_function(ctx);
    duk_get_prop_string(ctx, -1,
                        "\xff"
                        "level");
    char level[16] = {};
    std::strncpy(level, duk_get_string(ctx, -1), sizeof level - 1);
    duk_pop_2(ctx);
    capture_line(ctx, level);
    return 0;
}

duk_ret_t host_log(duk_context* ctx) {
    capture_line(ctx, "info");
    return 0;
}

constexpr std::size_t kMaxResponse = 1024 * 1024;

// The C++ half of ctx.http: no Duktape calls; results in g_http_*.
void perform_http(const char* url, const char* method, const char* body, const char* header_lines) {
    g_http_body.clear();
    g_http_error.clear();
    g_http_status = 0;
    CURLU* parsed = curl_url();
    char* host = nullptr;
    char* scheme = nullptr;
    const bool ok = curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK &&
                    curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                    curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK;
    const std::string host_text = ok ? host : "";
    const std::string scheme_text = ok ? riveredge::core::lower_ascii(scheme) : "";
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(parsed);
    if (!ok || (scheme_text != "http" && scheme_text != "https")) {
        g_http_error = "ctx.http needs an http(s) URL";
        return;
    }
    if (!riveredge::core::host_allowed(host_text, g_state.http_allow_list)) {
        g_http_error = "host " + host_text + " is not on this tenant's allow-list";
        return;
    }
    if (!riveredge::core::OutboundPolicy::method_allowed(method)) {
        g_http_error =
            std::string("ctx.http does not send ") + method + " (GET, POST, PUT, PATCH or DELETE)";
        return;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        g_state.deadline - std::chrono::steady_clock::now());
    // The run's deadline bounds the call, connecting included, as it always has.
    riveredge::core::HttpExchange request{
        method, url,  body == nullptr ? std::nullopt : std::optional<std::string>(body),
        {},     left, kMaxResponse,
        left};
    const std::string_view lines = header_lines;
    for (std::size_t start = 0; start < lines.size();) {
        const std::size_t end = std::min(lines.find('\n', start), lines.size());
        request.headers.emplace_back(lines.substr(start, end - start));
        start = end + 1;
    }
    riveredge::core::HttpReply reply;
    try {
        reply = riveredge::core::exchange_http(*g_state.outbound, request);
    } catch (const std::exception& refused) {
        g_http_error = std::string("ctx.http refused: ") + refused.what();
        return;
    }
    if (!reply.transport_error.empty()) {
        g_http_error = "ctx.http failed: " + reply.transport_error;
    } else if (reply.truncated) {
        g_http_error = "ctx.http: the response is longer than " +
                       std::to_string(kMaxResponse / 1024 / 1024) + " MiB";
    } else {
        g_http_status = reply.status;
        g_http_body = std::move(reply.body);
    }
}

// ctx.http({method, url, headers, body}) -> {status, body}; only hosts on the tenant's list.
duk_ret_t host_http(duk_context* ctx) {
    if (g_state.http_allow_list.empty()) {
        return duk_error(ctx, DUK_ERR_ERROR, "ctx.http is off for this tenant (empty allow-list)");
    }
    if (g_state.http_calls_left-- <= 0) {
        return duk_error(ctx, DUK_ERR_RANGE_ERROR, "too many ctx.http calls in one run");
    }
    duk_require_object(ctx, 0);
    duk_get_prop_string(ctx, 0, "url");  // index 1
    const char* url = duk_require_string(ctx, 1);
    duk_get_prop_string(ctx, 0, "method");  // index 2
    const char* method = duk_is_string(ctx, 2) ? duk_get_string(ctx, 2) : "GET";
    duk_get_prop_string(ctx, 0, "body");  // index 3
    const char* body = nullptr;
    if (duk_is_string(ctx, 3)) {
        body = duk_get_string(ctx, 3);
    } else if (!duk_is_undefined(ctx, 3) && !duk_is_null(ctx, 3)) {
        body = duk_json_encode(ctx, 3);
    }
    // Headers as "Name: value" lines joined by newlines (index 4); lines with CR/LF are dropped.
    duk_push_string(ctx, "\n");
    duk_idx_t header_count = 0;
    duk_get_prop_string(ctx, 0, "headers");
    if (duk_is_object(ctx, -1)) {
        duk_enum(ctx, -1, DUK_ENUM_OWN_PROPERTIES_ONLY);
        while (duk_next(ctx, -1, 1)) {
            duk_push_sprintf(ctx, "%s: %s", duk_safe_to_string(ctx, -2),
                             duk_safe_to_string(ctx, -2 + 1));
            if (std::strpbrk(duk_get_string(ctx, -1), "\r\n") == nullptr) {
                duk_insert(ctx, 5 + header_count);
                ++header_count;
            } else {
                duk_pop(ctx);
            }
            duk_pop_2(ctx);
        }
        duk_pop(ctx);
    }
    duk_pop(ctx);
    duk_join(ctx, header_count);
    perform_http(url, method, body, duk_get_string(ctx, 4));
    if (!g_http_error.empty()) {
        return duk_error(ctx, DUK_ERR_ERROR, "%s", g_http_error.c_str());
    }
    duk_push_object(ctx);
    duk_push_int(ctx, static_cast<duk_int_t>(g_http_status));
    duk_put_prop_string(ctx, -2, "status");
    duk_push_lstring(ctx, g_http_body.data(), g_http_body.size());
    duk_put_prop_string(ctx, -2, "body");
    return 1;
}

void install_console(duk_context* ctx) {
    duk_push_object(ctx);
    for (const char* level : {"log", "info", "warn", "error", "debug"}) {
        duk_push_c_function(ctx, console_write, DUK_VARARGS);
        duk_push_string(ctx, level);
        duk_put_prop_string(ctx, -2,
                            "\xff"
                            "level");
        duk_put_prop_string(ctx, -2, level);
    }
    duk_put_global_string(ctx, "console");
}

// What the engine offers beyond ECMAScript and is not for scripts: the Duktape object (internals,
// finalizers, error hooks) and anything that could reach the host.
void remove_host_globals(duk_context* ctx) {
    for (const char* name : {"Duktape", "print", "alert", "require", "module", "exports"}) {
        duk_push_global_object(ctx);
        duk_del_prop_string(ctx, -1, name);
        duk_pop(ctx);
    }
}

// {message, line, stack} from the error value on top of the stack.
json::object error_of(duk_context* ctx, duk_idx_t index) {
    index = duk_normalize_index(ctx, index);
    json::object error;
    if (duk_is_error(ctx, index)) {
        duk_get_prop_string(ctx, index, "lineNumber");
        if (duk_is_number(ctx, -1)) {
            error["line"] = static_cast<std::int64_t>(duk_get_int(ctx, -1));
        }
        duk_pop(ctx);
        duk_get_prop_string(ctx, index, "stack");
        if (duk_is_string(ctx, -1)) {
            // Frames inside the engine's own C code say nothing to the script's author.
            std::string stack;
            duk_size_t length = 0;
            const char* whole = duk_get_lstring(ctx, -1, &length);
            std::string_view text(whole, length);
            while (!text.empty()) {
                const auto end = std::min(text.find('\n'), text.size());
                const auto line = text.substr(0, end);
                if (line.size() < 9 || line.substr(line.size() - 9) != " internal") {
                    stack += std::string(stack.empty() ? "" : "\n") + std::string(line);
                }
                text.remove_prefix(std::min(end + 1, text.size()));
            }
            error["stack"] = stack;
        }
        duk_pop(ctx);
    }
    // Taken with its length: a NUL in the message is a character, not its end (the outcome is
    // made UTF-8 as it is written, the run's record storable later, as console lines are).
    duk_dup(ctx, index);
    duk_size_t length = 0;
    const char* message = duk_safe_to_lstring(ctx, -1, &length);
    error["message"] = json::string(std::string_view(message, length));
    duk_pop(ctx);
    return error;
}

std::size_t number_or(const json::object& object, const char* key, std::size_t fallback) {
    const auto* value = object.if_contains(key);
    return value != nullptr && value->is_number() ? value->to_number<std::size_t>() : fallback;
}

// The least privilege this machine allows: another user when started as root; no network at all
// (a fresh, empty network namespace) when the run may not use ctx.http. Where the kernel allows
// no user namespaces the run keeps the host's network, and only ctx.http's checks apply.
void drop_privileges(bool needs_network) {
    if (geteuid() == 0) {
        constexpr uid_t kNobody = 65534;
        if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) {
            std::_Exit(4);  // never run untrusted code as root
        }
    }
    if (!needs_network) {
        unshare(CLONE_NEWUSER | CLONE_NEWNET);
    }
}

void set_os_limits(std::size_t memory_bytes, std::size_t timeout_ms) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    const auto limit = [](int resource, rlim_t value) {
        rlimit r{value, value};
        setrlimit(resource, &r);
    };
    limit(RLIMIT_CORE, 0);
    limit(RLIMIT_FSIZE, 0);
    limit(RLIMIT_NOFILE, 32);
    // CPU seconds: a backstop should the parent fail to kill us at the deadline.
    limit(RLIMIT_CPU, static_cast<rlim_t>(timeout_ms / 1000 + 2));
#if !defined(__SANITIZE_ADDRESS__)
    // Address space: the heap budget is the precise cap; this bounds everything else. (Not under
    // AddressSanitizer, whose shadow memory needs terabytes of address space.)
    limit(RLIMIT_AS, static_cast<rlim_t>(memory_bytes + std::size_t{512} * 1024 * 1024));
#else
    (void)memory_bytes;
#endif
}

}  // namespace

int main() {
    // Nothing the app had open reaches the sandbox: the runner closes it at spawn, and so do we
    // (stdin/stdout are the runner's socket, stderr /dev/null).
    close_range(3, ~0U, 0);
    const std::string input{std::istreambuf_iterator<char>(std::cin),
                            std::istreambuf_iterator<char>()};
    boost::system::error_code ec;
    const json::value parsed = json::parse(input, ec);
    if (ec || !parsed.is_object()) {
        write_outcome(json::object{{"status", "failed"},
                                   {"error", json::object{{"message", "bad worker request"}}}});
        return 2;
    }
    const json::object& request = parsed.as_object();
    const json::object limits = request.if_contains("limits") && request.at("limits").is_object()
                                    ? request.at("limits").as_object()
                                    : json::object{};
    const std::size_t timeout_ms = number_or(limits, "timeout_ms", 1000);
    g_budget.limit = number_or(limits, "memory_bytes", std::size_t{32} * 1024 * 1024);
    g_state.console_limit = number_or(limits, "console_bytes", 16 * 1024);
    g_state.http_calls_left = static_cast<int>(number_or(limits, "http_calls", 20));
    const std::size_t output_limit = number_or(limits, "output_bytes", 64 * 1024);
    g_state.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    if (const auto* list = request.if_contains("http_allow_list"); list && list->is_array()) {
        for (const auto& host : list->as_array()) {
            if (host.is_string()) {
                g_state.http_allow_list.emplace_back(host.as_string());
            }
        }
    }
    if (const auto* policy = request.if_contains("outbound_policy");
        policy != nullptr && policy->is_string()) {
        try {
            g_state.outbound = std::make_unique<riveredge::core::OutboundPolicy>(
                riveredge::core::OutboundPolicy::from_text(std::string(policy->as_string())));
        } catch (const std::exception&) {
            write_outcome(json::object{{"status", "failed"},
                                       {"error", json::object{{"message", "bad worker request"}}}});
            return 2;
        }
    }
    drop_privileges(!g_state.http_allow_list.empty());
    set_os_limits(g_budget.limit, timeout_ms);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    duk_context* ctx =
        duk_create_heap(budget_alloc, budget_realloc, budget_free, &g_budget, fatal_handler);
    if (ctx == nullptr) {
        write_outcome(json::object{{"status", "failed"},
                                   {"error", json::object{{"message", "no engine heap"}}}});
        return 2;
    }
    remove_host_globals(ctx);
    install_console(ctx);

    json::object outcome;
    const std::string code = request.if_contains("code") && request.at("code").is_string()
                                 ? std::string(request.at("code").as_string())
                                 : std::string();
    const bool validate_only = request.if_contains("mode") && request.at("mode") == "validate";

    duk_push_string(ctx, "script.js");
    if (duk_pcompile_lstring_filename(ctx, 0, code.data(), code.size()) != 0) {
        outcome["status"] = "syntax_error";
        outcome["error"] = error_of(ctx, -1);
    } else if (validate_only) {
        outcome["status"] = "valid";
    } else if (duk_pcall(ctx, 0) != DUK_EXEC_SUCCESS) {
        outcome["status"] = g_budget.exceeded ? "memory_exceeded" : "failed";
        outcome["error"] = error_of(ctx, -1);
    } else {
        duk_pop(ctx);
        if (!duk_get_global_string(ctx, "main") || !duk_is_function(ctx, -1)) {
            outcome["status"] = "failed";
            outcome["error"] =
                json::object{{"message", "the script must define function main(args, ctx)"}};
        } else {
            const json::value arguments =
                request.if_contains("arguments") ? request.at("arguments") : json::object{};
            duk_push_string(ctx, json::serialize(arguments).c_str());
            duk_json_decode(ctx, -1);
            const json::value context =
                request.if_contains("context") ? request.at("context") : json::object{};
            duk_push_string(ctx, json::serialize(context).c_str());
            duk_json_decode(ctx, -1);
            duk_push_c_function(ctx, host_log, DUK_VARARGS);
            duk_put_prop_string(ctx, -2, "log");
            duk_push_c_function(ctx, host_http, 1);
            duk_put_prop_string(ctx, -2, "http");
            if (duk_pcall(ctx, 2) != DUK_EXEC_SUCCESS) {
                outcome["status"] = g_budget.exceeded ? "memory_exceeded" : "failed";
                outcome["error"] = error_of(ctx, -1);
                if (g_budget.exceeded) {
                    outcome["error"].as_object()["message"] =
                        "the script exceeded its memory limit";
                }
            } else {
                // Encoding may throw (a cyclic value): protected.
                std::string encoded;
                const duk_int_t rc = duk_safe_call(
                    ctx,
                    [](duk_context* inner, void* udata) -> duk_ret_t {
                        const char* text = duk_json_encode(inner, -1);
                        *static_cast<std::string*>(udata) = text != nullptr ? text : "null";
                        return 0;
                    },
                    &encoded, 1, 1);
                if (rc != DUK_EXEC_SUCCESS) {
                    outcome["status"] = "failed";
                    outcome["error"] = json::object{
                        {"message", std::string("the result is not JSON-serialisable: ") +
                                        duk_safe_to_string(ctx, -1)}};
                } else if (encoded.size() > output_limit) {
                    outcome["status"] = "output_exceeded";
                    outcome["error"] =
                        json::object{{"message", "the result is " + std::to_string(encoded.size()) +
                                                     " bytes, over the limit of " +
                                                     std::to_string(output_limit)}};
                } else if (encoded.empty()) {
                    // `undefined` encodes to nothing: a script that returns nothing yields null.
                    outcome["status"] = "succeeded";
                    outcome["result"] = nullptr;
                } else {
                    // Read as UTF-8, and no deeper than a request may nest: where the result
                    // goes (a run, an approval's variables, a workflow's context) nests it
                    // further.
                    json::parse_options options;
                    options.max_depth = riveredge::core::kRequestJsonDepth;
                    boost::system::error_code parse_error;
                    auto result = json::parse(engine_text(encoded), parse_error, {}, options);
                    if (parse_error == json::error::too_deep) {
                        outcome["status"] = "failed";
                        outcome["error"] = json::object{
                            {"message", "the result nests deeper than " +
                                            std::to_string(riveredge::core::kRequestJsonDepth) +
                                            " levels of arrays and objects"}};
                    } else if (parse_error) {
                        outcome["status"] = "failed";
                        outcome["error"] = json::object{
                            {"message", "the result is not JSON: " + parse_error.message()}};
                    } else {
                        outcome["status"] = "succeeded";
                        outcome["result"] = std::move(result);
                    }
                }
            }
        }
    }
    outcome["console"] = std::move(g_state.console);
    outcome["console_truncated"] = g_state.console_truncated;
    outcome["memory_bytes"] = g_budget.peak;
    duk_destroy_heap(ctx);
    curl_global_cleanup();
    write_outcome(outcome);
    return 0;
}
