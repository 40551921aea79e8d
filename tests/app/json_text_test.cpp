// API responses write numbers as plain decimals, and everything else as Boost.JSON does; request
// fields are read by their rules, times in the API's one format.

#include "core/json/request_fields.hpp"
#include "core/json/text.hpp"
#include "core/text/storable.hpp"
#include "core/text/utf8.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <limits>

namespace json = boost::json;

TEST_CASE("response JSON writes doubles as plain decimals that read back exactly", "[app][unit]") {
    const json::value value{{"duration_seconds", 2.177},
                            {"ratio", 0.5},
                            {"whole", 100.0},
                            {"tiny", 1.25e-7},
                            {"count", 3},
                            {"name", "审批 \"quoted\"\n"},
                            {"list", json::array{1.5, nullptr, true}},
                            {"nan", std::numeric_limits<double>::quiet_NaN()}};
    const std::string text = riveredge::core::to_json_text(value);
    CHECK(text.find("2.177") != std::string::npos);
    CHECK(text.find("E0") == std::string::npos);
    CHECK(text.find("\"ratio\":0.5") != std::string::npos);
    CHECK(text.find("\"whole\":100") != std::string::npos);
    CHECK(text.find("\"nan\":null") != std::string::npos);
    const auto back = json::parse(text);
    CHECK(back.at("duration_seconds").to_number<double>() == 2.177);
    CHECK(back.at("tiny").to_number<double>() == 1.25e-7);
    CHECK(back.at("name") == "审批 \"quoted\"\n");
    CHECK(back.at("list") == json::array{1.5, nullptr, true});
    CHECK(back.at("count") == 3);
}

TEST_CASE("request fields read by their rules and name every problem", "[app][fields]") {
    namespace core = riveredge::core;
    const auto body = boost::json::parse(R"({"name":"Ann","empty":"","long":"abcdef",
        "line":"a\nb","count":7,"big":11,"flag":true,"word":"no","kind":"two",
        "at":"2026-12-01T09:00:00+08:00","bad_at":"yesterday","nothing":null})")
                          .as_object();
    boost::json::object problems;
    CHECK(core::text_field(body, "name", {.max = 5, .min = 1, .required = true}, problems) ==
          "Ann");
    CHECK(core::text_field(body, "empty", {.max = 5}, problems) == "");
    CHECK_FALSE(core::text_field(body, "nothing", {.max = 5}, problems));
    CHECK(problems.empty());

    CHECK_FALSE(core::text_field(body, "missing", {.max = 5, .required = true}, problems));
    CHECK_FALSE(core::text_field(body, "empty", {.max = 5, .min = 1}, problems));
    CHECK_FALSE(core::text_field(body, "long", {.max = 5}, problems));
    CHECK_FALSE(core::text_field(body, "line", {.max = 5, .single_line = true}, problems));
    CHECK_FALSE(core::text_field(body, "count", {.max = 5}, problems));
    CHECK(core::text_field(body, "line", {.max = 5}, problems) == "a\nb");
    CHECK(problems.at("missing") == "required");
    CHECK(problems.at("empty") == "a non-empty string of at most 5 bytes");
    CHECK(problems.at("long") == "a string of at most 5 bytes");
    CHECK(problems.at("line") == "no control characters");
    CHECK(problems.contains("count"));

    problems.clear();
    CHECK(core::int_field(body, "count", 1, 10, problems) == 7);
    CHECK_FALSE(core::int_field(body, "big", 1, 10, problems));
    CHECK_FALSE(core::int_field(body, "name", 1, 10, problems));
    CHECK(core::bool_field(body, "flag", problems) == true);
    CHECK_FALSE(core::bool_field(body, "word", problems));
    CHECK(core::choice_field(body, "kind", {"one", "two"}, problems) == "two");
    CHECK_FALSE(core::choice_field(body, "word", {"one", "two"}, problems));
    CHECK(core::time_field(body, "at", problems) == core::parse_time("2026-12-01T01:00:00Z"));
    CHECK_FALSE(core::time_field(body, "bad_at", problems, "trigger.at"));
    CHECK(problems.at("big") == "an integer from 1 to 10");
    CHECK(problems.contains("name"));
    CHECK(problems.at("word") == "one of one, two");
    CHECK(problems.contains("trigger.at"));
    CHECK_FALSE(problems.contains("bad_at"));
    CHECK(problems.size() == 4);
}

TEST_CASE("lists of texts and nested objects are read by the same rules", "[app][fields]") {
    namespace core = riveredge::core;
    const auto body = boost::json::parse(R"({"to":["a","b","a"],"none":[],"mixed":["a",1],
        "many":["a","b","c"],"line":["x\ny"],"action":{"type":"mail"}})")
                          .as_object();
    boost::json::object problems;
    const core::TextListRule rule{.min = 1, .max = 3, .item = {.max = 5, .min = 1}};
    CHECK(core::text_list_field(body, "to", rule, problems) ==
          std::vector<std::string>{"a", "b", "a"});
    auto distinct = rule;
    distinct.distinct = true;
    CHECK(core::text_list_field(body, "to", distinct, problems) ==
          std::vector<std::string>{"a", "b"});
    CHECK_FALSE(core::text_list_field(body, "absent", rule, problems));
    CHECK(problems.empty());
    auto required = rule;
    required.required = true;
    CHECK_FALSE(core::text_list_field(body, "absent", required, problems));
    CHECK_FALSE(core::text_list_field(body, "none", rule, problems));
    CHECK_FALSE(core::text_list_field(body, "mixed", rule, problems));
    auto two = rule;
    two.max = 2;
    CHECK_FALSE(core::text_list_field(body, "many", two, problems));
    auto single = rule;
    single.item.single_line = true;
    CHECK_FALSE(core::text_list_field(body, "line", single, problems));
    CHECK(problems.at("absent") == "required");
    CHECK(problems.at("none") == "an array of 1 to 3 items");
    CHECK(problems.at("mixed") == "each item a non-empty string of at most 5 bytes");
    CHECK(problems.at("many") == "an array of 1 to 2 items");
    CHECK(problems.at("line") == "each item no control characters");

    // A NUL is no character of any text: PostgreSQL cannot store it, and a text cut at it is
    // another text than the one a hash or a signature covered.
    const auto nul =
        boost::json::parse(R"({"reason":"ok\u0000x","list":["a","b\u0000"]})").as_object();
    boost::json::object nul_problems;
    CHECK_FALSE(core::text_field(nul, "reason", {.max = 50}, nul_problems));
    CHECK_FALSE(core::text_list_field(nul, "list", rule, nul_problems));
    CHECK(nul_problems.at("reason") == "no NUL characters");
    CHECK(nul_problems.at("list") == "each item no NUL characters");

    // A nested object's problems are filed under its path.
    boost::json::object nested;
    core::choice_field(body.at("action").as_object(), "type", {"message", "http"}, nested);
    core::require_fields(body.at("action").as_object(), {"url"}, nested);
    boost::json::object all;
    core::file_under(all, "action", nested);
    CHECK(all.size() == 2);
    CHECK(all.at("action.type") == "one of message, http");
    CHECK(all.at("action.url") == "required");
}

TEST_CASE("times are written as RFC 3339 UTC with milliseconds and read from any offset",
          "[app][fields]") {
    namespace core = riveredge::core;
    const auto time = core::parse_time("2026-03-08T03:00:00.5-05:00");
    REQUIRE(time);
    CHECK(core::format_utc(*time) == "2026-03-08T08:00:00.500Z");
    CHECK(core::format_utc(*core::parse_time("1999-12-31T23:59:59.999999Z")) ==
          "1999-12-31T23:59:59.999Z");
    CHECK_FALSE(core::parse_time("2026-02-30T00:00:00Z"));
    CHECK_FALSE(core::parse_time("2026-03-08 03:00"));
    // What PostgreSQL cannot store is not a time here either: year 0, offsets past 15:59.
    CHECK(core::parse_time("2026-03-08T03:00:00+14:00"));
    CHECK_FALSE(core::parse_time("2026-03-08T03:00:00+16:00"));
    CHECK_FALSE(core::parse_time("2026-03-08T03:00:00-05:60"));
    CHECK_FALSE(core::parse_time("0000-01-01T00:00:00Z"));
}

TEST_CASE("text from outside is made storable: a NUL or a byte that is not UTF-8 becomes U+FFFD",
          "[app][unit]") {
    using riveredge::core::storable_text;
    const std::string fffd = "\xEF\xBF\xBD";
    CHECK(storable_text("审批 ok") == "审批 ok");  // whole characters stay
    CHECK(storable_text(std::string("a\0b", 3)) == "a" + fffd + "b");
    // A reply cut by a size cap in the middle of a character.
    CHECK(storable_text(std::string("审批").substr(0, 4)) == "审" + fffd);
    CHECK(storable_text("\xC0\xAF") == fffd + fffd);                        // an overlong '/'
    CHECK(storable_text("\xED\xA0\x80") == fffd + fffd + fffd);             // a surrogate
    CHECK(storable_text("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);  // past U+10FFFF
    CHECK(storable_text("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");         // outside the BMP
    const auto stored = riveredge::core::storable_json(
        json::parse(R"({"k\u0000":["x\u0000",1,{"n":null}],"t":true})"));
    CHECK(stored == json::parse(R"({"k\ufffd":["x\ufffd",1,{"n":null}],"t":true})"));
}

TEST_CASE("text cut to a size is cut between two characters", "[app][unit]") {
    using riveredge::core::utf8_prefix;
    const std::string han = "汉汉";  // 3 bytes each
    CHECK(utf8_prefix(han, 6) == han);
    CHECK(utf8_prefix(han, 100) == han);
    CHECK(utf8_prefix(han, 5) == "汉");
    CHECK(utf8_prefix(han, 4) == "汉");
    CHECK(utf8_prefix(han, 3) == "汉");
    CHECK(utf8_prefix(han, 2).empty());
    CHECK(utf8_prefix("a\xF0\x9F\x98\x80", 5) == "a\xF0\x9F\x98\x80");  // outside the BMP
    CHECK(utf8_prefix("a\xF0\x9F\x98\x80", 4) == "a");
    CHECK(utf8_prefix("ab\xC3\xA9", 3) == "ab");
    // A text that ends inside a character (cut before) loses that character too.
    CHECK(utf8_prefix(han.substr(0, 4), 4) == "汉");
    // Bytes that are not UTF-8 are left for storable_text.
    CHECK(utf8_prefix("a\xE9t\xE9", 3) == "a\xE9t");
    CHECK(utf8_prefix("\x80\x80\x80\x80", 4) == "\x80\x80\x80\x80");
}
