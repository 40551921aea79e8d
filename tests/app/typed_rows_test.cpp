// Typed rows (core/db/row.hpp): a described struct read from a real PostgreSQL result, member by
// member and type by type, and shown as JSON; a select list that misses a member or a value that
// does not fit is an error, not a silent default.

#include "core/db/database.hpp"
#include "core/db/row.hpp"
#include "core/json/canonical.hpp"
#include "support/temp_postgres.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <random>

namespace json = boost::json;
using riveredge::core::db::DbError;
using riveredge::core::db::Pool;

namespace typed_rows_test {

struct Sample {
    std::int64_t id = 0;
    int small = 0;
    bool flag = false;
    double ratio = 0;
    std::string name;
    std::optional<std::string> note;
    std::optional<std::int64_t> count;
    json::object settings;
    json::array tags;
    std::vector<std::string> owners;
    std::optional<json::value> extra;
};
BOOST_DESCRIBE_STRUCT(Sample,
                      (),
                      (id, small, flag, ratio, name, note, count, settings, tags, owners, extra))

struct JustId {
    std::int64_t id = 0;
    std::string missing;
};
BOOST_DESCRIBE_STRUCT(JustId, (), (id, missing))

struct Narrow {
    int small = 0;
};
BOOST_DESCRIBE_STRUCT(Narrow, (), (small))

}  // namespace typed_rows_test

using typed_rows_test::Sample;

TEST_CASE("typed rows read every member from the column of its name", "[app][db]") {
    Pool pool(inngest_test::shared_postgres().fresh_database(), 1);
    const auto rows = riveredge::core::db::exec_once(
        pool, std::nullopt,
        "SELECT * FROM (VALUES "
        "(9007199254740993::bigint, 7, true, 0.25::float8, 'a''b; DROP', NULL::text, NULL::bigint, "
        "'{\"k\":1}', '[1,\"x\"]', '[\"u1\",\"u2\"]', NULL::text), "
        "(2, -3, false, 1.5, 'two', 'noted', 42, '{}', '[]', '[]', '{\"deep\":[true]}')) "
        "AS v(id, small, flag, ratio, name, note, count, settings, tags, owners, extra) "
        "ORDER BY id DESC");
    const auto all = riveredge::core::db::rows_as<Sample>(rows);
    REQUIRE(all.size() == 2);

    const auto& first = all[0];
    CHECK(first.id == 9007199254740993);  // beyond 2^53: read as an integer, not a double
    CHECK(first.small == 7);
    CHECK(first.flag);
    CHECK(first.ratio == 0.25);
    CHECK(first.name == "a'b; DROP");
    CHECK_FALSE(first.note.has_value());
    CHECK_FALSE(first.count.has_value());
    CHECK(first.settings.at("k") == 1);
    CHECK(first.tags.size() == 2);
    CHECK(first.owners == std::vector<std::string>{"u1", "u2"});
    CHECK_FALSE(first.extra.has_value());

    const auto& second = all[1];
    CHECK(second.small == -3);
    CHECK_FALSE(second.flag);
    CHECK(second.note == std::optional<std::string>("noted"));
    CHECK(second.count == std::optional<std::int64_t>(42));
    REQUIRE(second.extra.has_value());
    CHECK(second.extra->at("deep").as_array().at(0) == true);

    // The JSON is the row member by member; an empty optional is null.
    const auto shown = riveredge::core::db::row_json(first);
    CHECK(shown.size() == 11);
    CHECK(shown.at("note").is_null());
    CHECK(shown.at("extra").is_null());
    CHECK(shown.at("owners") == json::array{"u1", "u2"});
    CHECK(riveredge::core::db::row_json(second).at("count") == 42);

    CHECK(riveredge::core::db::first_as<Sample>(rows)->id == first.id);
    const auto none =
        riveredge::core::db::exec_once(pool, std::nullopt, "SELECT 1 AS id WHERE false");
    CHECK_FALSE(riveredge::core::db::first_as<Sample>(none).has_value());
}

TEST_CASE("typed rows refuse a missing column and a value that does not fit", "[app][db]") {
    Pool pool(inngest_test::shared_postgres().fresh_database(), 1);
    const auto no_column =
        riveredge::core::db::exec_once(pool, std::nullopt, "SELECT 1::bigint AS id");
    try {
        riveredge::core::db::row_as<typed_rows_test::JustId>(no_column);
        FAIL("a described member without a column was read");
    } catch (const DbError& error) {
        CHECK(error.sqlstate() == "42703");
        CHECK(std::string(error.what()).find("missing") != std::string::npos);
    }
    const auto too_big =
        riveredge::core::db::exec_once(pool, std::nullopt, "SELECT 4294967296::bigint AS small");
    try {
        riveredge::core::db::row_as<typed_rows_test::Narrow>(too_big);
        FAIL("a bigint beyond int was narrowed");
    } catch (const DbError& error) {
        CHECK(error.sqlstate() == "22003");
    }
}

TEST_CASE("a row the result does not have is an error, not a read past its end", "[app][db]") {
    Pool pool(inngest_test::shared_postgres().fresh_database(), 1);
    const auto none = riveredge::core::db::exec_once(
        pool, std::nullopt, "SELECT 1::bigint AS id, true AS ok, 'x' AS t WHERE false");
    REQUIRE(none.empty());
    // Each read used to hand libpq's pointer past the result to strtoll (a crash).
    CHECK_THROWS_AS(none.integer(0, "id"), DbError);
    CHECK_THROWS_AS(none.boolean(0, "ok"), DbError);
    CHECK_THROWS_AS(none.text(0, "t"), DbError);
    CHECK_THROWS_AS(none.is_null(-1, "t"), DbError);
    try {
        static_cast<void>(none.integer(0, "id"));
    } catch (const DbError& error) {
        CHECK(error.sqlstate() == "P0002");
    }
}

TEST_CASE("transact commits what its work did, or nothing when the work throws", "[app][db]") {
    Pool pool(inngest_test::shared_postgres().fresh_database(), 2);
    using riveredge::core::db::Transaction;
    riveredge::core::db::exec_once(pool, std::nullopt, "CREATE TABLE t (v int)");
    const auto inserted = riveredge::core::db::transact(pool, std::nullopt, [](Transaction& tx) {
        tx.exec("INSERT INTO t VALUES (1)");
        return tx.exec("INSERT INTO t VALUES (2)").affected();
    });
    CHECK(inserted == 1);
    CHECK_THROWS_AS(riveredge::core::db::transact(pool, std::nullopt,
                                                  [](Transaction& tx) {
                                                      tx.exec("INSERT INTO t VALUES (3)");
                                                      throw std::runtime_error("work failed");
                                                  }),
                    std::runtime_error);
    const auto rows =
        riveredge::core::db::exec_once(pool, std::nullopt, "SELECT count(*) AS n FROM t");
    CHECK(rows.integer(0, "n") == 2);  // 1 and 2 committed; 3 rolled back
}

TEST_CASE("parameters are values that PostgreSQL reads back as the same values", "[app][db]") {
    Pool pool(inngest_test::shared_postgres().fresh_database(), 1);
    using riveredge::core::db::Param;
    const std::optional<std::int64_t> absent;
    const std::optional<std::int64_t> present = 7;
    const auto rows = riveredge::core::db::exec_once(
        pool, std::nullopt,
        "SELECT $1::bigint AS big, $2::int AS small, $3::boolean AS yes, $4::boolean AS no, "
        "$5::float8 = 0.1::float8 AS tenth, $6::text AS shown, $7::jsonb = '{\"k\":[1,\"x\"]}' "
        "AS same_json, $8::bigint IS NULL AS absent, $9::bigint AS present, $10 AS tenant, $11 AS "
        "text_value, $12::text IS NULL AS null_text",
        {std::int64_t{9007199254740993}, -3, true, false, 0.1, 1e21,
         json::object{{"k", json::array{1, "x"}}}, absent, present,
         riveredge::core::TenantId::trusted("acme"), "a'b; DROP", std::nullopt});
    CHECK(rows.text(0, "big") == "9007199254740993");
    CHECK(rows.integer(0, "small") == -3);
    CHECK(rows.boolean(0, "yes"));
    CHECK_FALSE(rows.boolean(0, "no"));
    CHECK(rows.boolean(0, "tenth"));  // the shortest text that reads back as the same double
    CHECK(rows.text(0, "shown") == "1000000000000000000000");  // plain decimal, no exponent
    CHECK(rows.boolean(0, "same_json"));
    CHECK(rows.boolean(0, "absent"));
    CHECK(rows.integer(0, "present") == 7);
    CHECK(rows.text(0, "tenant") == "acme");
    CHECK(rows.text(0, "text_value") == "a'b; DROP");
    CHECK(rows.boolean(0, "null_text"));
    // Nothing converts to a flag by accident: a double or a pointer is not a bool parameter.
    STATIC_REQUIRE_FALSE(std::is_convertible_v<const char**, Param>);
    STATIC_REQUIRE(std::is_convertible_v<std::optional<bool>, Param>);
}

TEST_CASE("a text parameter holding a NUL is refused before it is sent, and nothing is written",
          "[app][db]") {
    Pool pool(inngest_test::shared_postgres().fresh_database(), 1);
    using riveredge::core::db::Transaction;
    riveredge::core::db::exec_once(pool, std::nullopt, "CREATE TABLE t (v text)");
    // libpq takes parameters as C strings: sent, "ok\0x" would be stored as "ok".
    const std::string with_nul("ok\0x", 4);
    try {
        riveredge::core::db::transact(pool, std::nullopt, [&](Transaction& tx) {
            tx.exec("INSERT INTO t VALUES ('before')");
            return tx.exec("INSERT INTO t VALUES ($1)", {with_nul}).affected();
        });
        FAIL("a text with a NUL was sent");
    } catch (const DbError& error) {
        CHECK(error.sqlstate() == "22021");  // PostgreSQL's own: character_not_in_repertoire
    }
    const auto rows =
        riveredge::core::db::exec_once(pool, std::nullopt, "SELECT count(*) AS n FROM t");
    CHECK(rows.integer(0, "n") == 0);
    // In JSON the NUL is an escape PostgreSQL's jsonb refuses on its own (22P05).
    try {
        riveredge::core::db::exec_once(pool, std::nullopt, "SELECT $1::jsonb AS j",
                                       {json::object{{"k", with_nul}}});
        FAIL("jsonb took a \\u0000");
    } catch (const DbError& error) {
        CHECK(error.sqlstate() == "22P05");
    }
}

TEST_CASE("of what jsonb gives back, canonical_json refuses exactly the integers named beyond 2^53",
          "[app][db]") {
    using riveredge::core::canonical_json;
    using riveredge::core::integer_beyond_exact;
    // Decimals as a request brings them: long ones, whole numbers past 2^53, powers of ten.
    std::mt19937_64 random(20261207);
    std::string text = "[1e16,-1e16,1e19,2e19,9007199254740992.0,1.5e300,5e-324,0.1,-3.0,0.0";
    for (int i = 0; i < 1500; ++i) {
        std::string digits;
        const int length = 15 + static_cast<int>(random() % 3);
        for (int k = 0; k < length; ++k) {
            digits.push_back(static_cast<char>('0' + (k == 0 ? 1 + random() % 9 : random() % 10)));
        }
        const auto point =
            static_cast<std::size_t>(random() % static_cast<std::uint64_t>(length - 1));
        text += "," + digits.substr(0, point + 1) + "." + digits.substr(point + 1);
        text += ",-" + digits + "e" + std::to_string(static_cast<int>(random() % 580) - 290);
    }
    for (int power = -30; power <= 30; ++power) {
        text += ",1e" + std::to_string(power) + ",4.35e" + std::to_string(power);
    }
    text += "]";
    const auto numbers = json::parse(text).as_array();
    Pool pool(inngest_test::shared_postgres().fresh_database(), 1);
    const auto rows = riveredge::core::db::exec_once(pool, std::nullopt,
                                                     "SELECT $1::jsonb::text AS back", {numbers});
    const auto back = json::parse(rows.text(0, "back")).as_array();
    REQUIRE(back.size() == numbers.size());
    int beyond = 0;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        bool canonical = true;
        try {
            canonical_json(back[i]);
        } catch (const riveredge::core::CanonicalJsonError&) {
            canonical = false;
        }
        INFO(json::serialize(numbers[i]) << " came back as " << json::serialize(back[i]));
        CHECK(integer_beyond_exact(back[i]).has_value() == !canonical);
        beyond += canonical ? 0 : 1;
    }
    CHECK(integer_beyond_exact(back[0]).has_value());        // 1e16 comes back an integer
    CHECK_FALSE(integer_beyond_exact(back[3]).has_value());  // 2e19: a double again
    CHECK(beyond > 5);
    // The path of the first one, in field-name style.
    CHECK(integer_beyond_exact(json::parse(R"({"a":[1,2.5,{"b":10000000000000000}],"c":1e17})")) ==
          "a[2].b");
    CHECK_FALSE(integer_beyond_exact(json::parse(R"({"a":[1,"10000000000000000",1e16]})")));
}
