// Memoized step state kept as slices of the call body: scanned once, parsed when read.

#include "execution/invocation.hpp"
#include "protocol/call_request.hpp"
#include "protocol/json_scan.hpp"
#include "support/call_builder.hpp"

#include <inngest/inngest.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <random>
#include <string>

namespace json = boost::json;
using inngest::detail::is_valid_json;
using inngest::detail::parse_call_request;
using inngest::detail::StepMemo;
using inngest_test::CallBuilder;
using inngest_test::step_hash;

namespace {

// Boost.JSON's parser with the depth the SDK reads state at.
bool boost_accepts(std::string_view text) {
    boost::system::error_code ec;
    json::parse(text, ec, {}, inngest::detail::json_parse_options());
    return !ec;
}

std::string call_body(std::string_view steps) {
    return R"({"event":{"name":"x","data":{}},"steps":)" + std::string(steps) +
           R"(,"ctx":{"run_id":"r","attempt":0}})";
}

struct Harness {
    Harness() : client({.app_id = "app", .dev = true}, inngest::Environment::none()) {}

    inngest::HttpResponse call(const CallBuilder& builder) const {
        const inngest::ServeHandler handler(client);
        return handler.handle(builder.request());
    }

    inngest::Client client;
};

}  // namespace

TEST_CASE("the scanner accepts exactly what Boost.JSON's parser accepts", "[unit]") {
    const char* samples[] = {
        "{}",
        "[]",
        R"({"a":[1,-2.5e+3,0.0,true,false,null,"s"],"b":{"c":{}}})",
        R"("esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00")",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "  [ 1 , 2 ]  ",
        "01",
        "-",
        "1.",
        "1e",
        "1e+",
        "[1,]",
        R"({"a":1,})",
        R"({"a" 1})",
        R"({1:2})",
        "[1 2]",
        "tru",
        "nul",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\x1f\"",
        "\"\xc0\x80\"",
        "\"\xe0\x80\x80\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\"\xc3\"",
        "\"\x80\"",
        "\"abc",
        "[\"a\"]]",
        "{}{}",
        "",
        "   ",
    };
    for (const char* sample : samples) {
        CAPTURE(sample);
        CHECK(is_valid_json(sample) == boost_accepts(sample));
    }
    // Nesting: kMaxJsonDepth levels are accepted, one more is not, as by Boost.JSON with the
    // same max_depth; mixed arrays and objects close in the right order.
    constexpr int kMax = inngest::detail::kMaxJsonDepth;
    for (int depth = kMax - 2; depth <= kMax + 2; ++depth) {
        const std::string nested = std::string(static_cast<std::size_t>(depth), '[') +
                                   std::string(static_cast<std::size_t>(depth), ']');
        std::string mixed;
        for (int level = 0; level < depth; ++level) {
            mixed += level % 3 == 0 ? "{\"k\":" : "[1,";
        }
        mixed += "null";
        for (int level = depth - 1; level >= 0; --level) {
            mixed += level % 3 == 0 ? ",\"z\":2}" : "]";
        }
        CAPTURE(depth);
        CHECK(is_valid_json(nested) == (depth <= kMax));
        CHECK(is_valid_json(nested) == boost_accepts(nested));
        CHECK(is_valid_json(mixed) == (depth <= kMax));
        CHECK(is_valid_json(mixed) == boost_accepts(mixed));
    }
}

TEST_CASE("random mutations of a call body are rejected exactly when Boost.JSON rejects them",
          "[unit]") {
    CallBuilder call;
    call.data("a", json::object{{"k", "v\"}]"}, {"n", json::array{1, 2.5, nullptr}}})
        .data("b", "caf\xc3\xa9 \xf0\x9f\x98\x80")
        .memo("c", nullptr);
    const std::string body = call.body();
    const char alphabet[] = "{}[]\",:\\ u0e-+.tfnx\x80\xc3\xed\x1f";
    std::mt19937 random(20261123);
    for (int round = 0; round < 4000; ++round) {
        std::string mutated = body;
        const int edits = 1 + static_cast<int>(random() % 3);
        for (int i = 0; i < edits; ++i) {
            const std::size_t at = random() % mutated.size();
            const char c = alphabet[random() % (sizeof alphabet - 1)];
            switch (random() % 3) {
                case 0:
                    mutated[at] = c;
                    break;
                case 1:
                    mutated.insert(mutated.begin() + static_cast<std::ptrdiff_t>(at), c);
                    break;
                default:
                    mutated.erase(at, 1);
                    break;
            }
        }
        CAPTURE(mutated);
        REQUIRE(is_valid_json(mutated) == boost_accepts(mutated));
        if (!boost_accepts(mutated)) {
            const auto parsed = parse_call_request(mutated);
            REQUIRE_FALSE(parsed.has_value());
            CHECK(parsed.error().code == inngest::ErrorCode::kMalformedRequest);
        }
    }
}

TEST_CASE("a malformed step value is rejected as a malformed request", "[unit]") {
    // Three levels of the body around a step's value: one more than the SDK reads.
    constexpr auto kDeep = static_cast<std::size_t>(inngest::detail::kMaxJsonDepth - 2);
    const std::string deep = std::string(kDeep, '[') + std::string(kDeep, ']');
    const std::string bodies[] = {
        call_body(R"({"h":{"data":[1,]}})"),
        call_body(R"({"h":{"data":"unterminated}})"),
        call_body(R"({"h":{"data":"\ud800"}})"),
        call_body("{\"h\":{\"data\":\"\xc0\x80\"}}"),
        call_body(R"({"h":{"data":01}})"),
        call_body(R"({"h":{"data":1},})"),
        call_body(R"({"h" {"data":1}})"),
        call_body(R"({"h":{"data":1}}})"),
        call_body(R"({"h":{"data":)" + deep + "}}"),  // kMaxJsonDepth + 1 levels in the body
    };
    for (const auto& body : bodies) {
        CAPTURE(body);
        const auto parsed = parse_call_request(body);
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().code == inngest::ErrorCode::kMalformedRequest);
    }
    // One level less is fine.
    const std::string ok = call_body(R"({"h":{"data":)" + deep.substr(1, deep.size() - 2) + "}}");
    CHECK(parse_call_request(ok).has_value());
}

TEST_CASE("step values with escaped quotes and brackets are sliced right", "[unit]") {
    const std::string steps =
        R"({"a\"]}":{"data":"x\"}]{[\\"},"h2":{"data":{"s":"]}\\\"","t":["\"",{}]}},)"
        R"("h3" : { "error" : {"name":"E","message":"m\"}"} } ,"h4":{"input":{"a":1}},)"
        R"("h5":{"data":1,"extra":2},"h6":null,"h7":"\u0041\ud83d\ude00"})";
    const std::string body = call_body(steps);
    const auto parsed = parse_call_request(body);
    REQUIRE(parsed.has_value());
    CHECK(parsed->steps.size() == 7);
    const json::object expected = json::parse(steps).as_object();
    for (const auto& [key, value] : expected) {
        CAPTURE(key);
        const StepMemo* memo = parsed->steps.find(key);
        REQUIRE(memo != nullptr);
        CHECK(json::parse(memo->raw) == value);
    }
    const StepMemo* quoted = parsed->steps.find("a\"]}");  // the key's escape is decoded
    REQUIRE(quoted != nullptr);
    CHECK(quoted->shape == StepMemo::Shape::kData);
    CHECK(inngest::detail::read_memo_string(quoted->inner) == "x\"}]{[\\");
    CHECK(parsed->steps.find("h2")->shape == StepMemo::Shape::kData);
    CHECK(json::parse(parsed->steps.find("h2")->inner) ==
          json::parse(R"({"s":"]}\\\"","t":["\"",{}]})"));
    CHECK(parsed->steps.find("h3")->shape == StepMemo::Shape::kError);
    CHECK(parsed->steps.find("h4")->shape == StepMemo::Shape::kInput);
    CHECK(parsed->steps.find("h5")->shape == StepMemo::Shape::kOther);
    CHECK(parsed->steps.find("h6")->raw == "null");
    CHECK(inngest::detail::read_memo_string(parsed->steps.find("h7")->raw) == "A\xf0\x9f\x98\x80");
}

TEST_CASE("a step present with null differs from an absent one, and a repeated key: last wins",
          "[unit]") {
    const std::string body = call_body(R"({"n":null,"d":{"data":1},"d":{"data":2}})");
    const auto parsed = parse_call_request(body);
    REQUIRE(parsed.has_value());
    CHECK(parsed->steps.size() == 2);
    REQUIRE(parsed->steps.find("n") != nullptr);
    CHECK(parsed->steps.find("n")->raw == "null");
    CHECK(parsed->steps.find("absent") == nullptr);
    CHECK(parsed->steps.find("d")->inner == "2");
    const std::string null_steps = call_body("null");
    CHECK(parse_call_request(null_steps)->steps.empty());
    const std::string array_steps = call_body("[]");
    CHECK_FALSE(parse_call_request(array_steps).has_value());
}

TEST_CASE("a memoized step the function never reads is scanned but not parsed", "[unit]") {
    Harness h;
    h.client.create_function({.id = "lazy", .triggers = {inngest::EventTrigger{"x"}}},
                             [](inngest::Context& ctx) {
                                 ctx.step.run("big", [] {});  // replayed, result never read
                                 const int small = ctx.step.run("small", [] { return 0; });
                                 ctx.step.run("next", [] { return 1; });
                                 return small;
                             });
    CallBuilder call;
    call.fn_slug = "app-lazy";
    // 8 MiB of state the function passes over, with escapes and brackets in it.
    std::string big(std::size_t{8} << 20, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096) {
        big.replace(i, 4, "\"]}\\");
    }
    call.data("big", json::object{{"blob", big}, {"list", json::array{1, 2, 3}}}).data("small", 41);
    const std::size_t before = inngest::detail::memo_reads_on_this_thread();
    const auto response = h.call(call);
    CHECK(inngest::detail::memo_reads_on_this_thread() - before == 1);  // only "small"
    REQUIRE(response.status == 206);
    const json::value ops = json::parse(response.body);
    CHECK(ops.at(0).at("id").as_string() == step_hash("next"));
    CHECK(ops.at(0).at("data") == 1);
}

TEST_CASE("a memoized string is decoded straight from the body when read", "[unit]") {
    Harness h;
    std::string seen;
    h.client.create_function({.id = "text", .triggers = {inngest::EventTrigger{"x"}}},
                             [&seen](inngest::Context& ctx) {
                                 seen = ctx.step.run("s", [] { return std::string(); });
                                 ctx.step.run("next", [] { return 1; });
                                 return 0;
                             });
    CallBuilder call;
    call.fn_slug = "app-text";
    call.data("s", "line\n\"quoted\" caf\xc3\xa9 \xf0\x9f\x98\x80 \\ end");
    const auto response = h.call(call);
    CHECK(response.status == 206);
    CHECK(seen == "line\n\"quoted\" caf\xc3\xa9 \xf0\x9f\x98\x80 \\ end");
}

TEST_CASE("run_lazy converts a memoized result only when it is read, and once", "[unit]") {
    Harness h;
    std::string raw;
    bool converted_before_read = true;
    std::vector<int> values;
    h.client.create_function(
        {.id = "deferred", .triggers = {inngest::EventTrigger{"x"}}}, [&](inngest::Context& ctx) {
            const auto unread = ctx.step.run_lazy("big", [] { return std::string(); });
            const auto list = ctx.step.run_lazy("list", [] { return std::vector<int>{}; });
            raw = std::string(unread.json());
            converted_before_read = list.converted();
            values = *list;
            values.push_back(static_cast<int>(list->size()));
            ctx.step.run("next", [] { return 1; });
            return 0;
        });
    CallBuilder call;
    call.fn_slug = "app-deferred";
    const std::string big(std::size_t{4} << 20, 'y');
    call.data("big", json::string(big)).data("list", json::array{4, 5, 6});
    const std::size_t before = inngest::detail::memo_reads_on_this_thread();
    const auto response = h.call(call);
    CHECK(inngest::detail::memo_reads_on_this_thread() - before == 1);  // "list", once
    REQUIRE(response.status == 206);
    CHECK(json::parse(response.body).at(0).at("id").as_string() == step_hash("next"));
    CHECK_FALSE(converted_before_read);
    CHECK(values == std::vector<int>{4, 5, 6, 3});
    CHECK(raw == "\"" + big + "\"");
}

TEST_CASE("run_lazy runs a new step like run and reports its result", "[unit]") {
    Harness h;
    int bodies = 0;
    h.client.create_function({.id = "fresh", .triggers = {inngest::EventTrigger{"x"}}},
                             [&bodies](inngest::Context& ctx) {
                                 const auto first = ctx.step.run_lazy("first", [&bodies] {
                                     ++bodies;
                                     return std::string("made");
                                 });
                                 return *first;
                             });
    CallBuilder call;
    call.fn_slug = "app-fresh";
    const auto planned = h.call(call);
    REQUIRE(planned.status == 206);
    const json::value ops = json::parse(planned.body);
    CHECK(ops.at(0).at("id").as_string() == step_hash("first"));
    CHECK(ops.at(0).at("data") == "made");
    CHECK(bodies == 1);

    call.data("first", "made");  // the next invocation replays it and returns it
    const auto finished = h.call(call);
    CHECK(finished.status == 200);
    CHECK(json::parse(finished.body) == "made");
    CHECK(bodies == 1);
}
