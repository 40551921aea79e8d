// API responses write numbers as plain decimals, and everything else as Boost.JSON does.

#include "core/json/text.hpp"

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
