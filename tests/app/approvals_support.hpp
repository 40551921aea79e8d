#pragma once

// Helpers for the approvals tests: fixtures, publishing a definition, starting instances and
// waiting on them while a manual clock stands still.

#include "app/app_under_test.hpp"
#include "core/db/database.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

namespace riveredge_test::approvals {

inline std::string fixture(const std::string& name) {
    std::ifstream in(std::string(PROJECT_SOURCE_DIR) + "/tests/app/fixtures/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

inline std::string import_body(const std::string& source, const std::string& extra = "") {
    return R"({"source":)" + source + (extra.empty() ? "" : "," + extra) + "}";
}

// A list from a GET, copied out of the response (never iterate a temporary's member).
inline json::array listed(AppUnderTest& t,
                          const std::string& path,
                          const std::string& token,
                          const char* key) {
    const auto response = t.call("GET", path, token);
    return response.body.at(key).as_array();
}

// Each node of an instance's diagram with its status.
inline std::map<std::string, std::string> statuses(AppUnderTest& t,
                                                   const std::string& token,
                                                   std::int64_t id) {
    std::map<std::string, std::string> status;
    for (const auto& n : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/diagram",
                                token, "nodes")) {
        status[std::string(n.at("id").as_string())] = std::string(n.at("status").as_string());
    }
    return status;
}

// The names in an instance's event log, in order.
inline std::vector<std::string> event_names(AppUnderTest& t,
                                            const std::string& token,
                                            std::int64_t id) {
    std::vector<std::string> names;
    for (const auto& e : listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events",
                                token, "events")) {
        names.emplace_back(e.at("name").as_string());
    }
    return names;
}

// The nodes of the caller's open tasks (the todo box), sorted.
// The children the instance's call activities started (its `child_started` events), once there
// are `count` of them (up to 5 s).
inline std::vector<std::int64_t> wait_children(AppUnderTest& t,
                                               const std::string& token,
                                               std::int64_t id,
                                               std::size_t count = 1) {
    std::vector<std::int64_t> children;
    for (int i = 0; i < 200 && children.size() < count; ++i) {
        children.clear();
        for (const auto& e :
             listed(t, "/api/v1/approvals/instances/" + std::to_string(id) + "/events", token,
                    "events")) {
            if (e.at("name") == "child_started") {
                children.push_back(e.at("data").at("child_id").as_int64());
            }
        }
        if (children.size() < count) {
            std::this_thread::sleep_for(25ms);
        }
    }
    REQUIRE(children.size() == count);
    return children;
}

inline std::vector<std::string> todo_nodes(AppUnderTest& t, const std::string& token) {
    std::vector<std::string> nodes;
    for (const auto& task : listed(t, "/api/v1/approvals/tasks", token, "items")) {
        nodes.emplace_back(task.at("node_id").as_string());
    }
    std::sort(nodes.begin(), nodes.end());
    return nodes;
}

// Binds `activity` to a new script `script` that returns its arguments, declared by
// `parameters` (a JSON array of {name, type}).
inline void bind_script_activity(AppUnderTest& t,
                                 const std::string& admin,
                                 const std::string& activity,
                                 const std::string& script,
                                 const std::string& parameters) {
    const auto created =
        t.call("POST", "/api/v1/scripts", admin,
               R"({"name":")" + script +
                   R"(","code":"function main(a) { return a; }","parameters":)" + parameters + "}");
    REQUIRE(created.status == 201);
    REQUIRE(t.call("PUT", "/api/v1/approvals/activities/" + activity, admin,
                   R"({"kind":"script","script_id":)" +
                       std::to_string(created.body.at("id").as_int64()) + "}")
                .status == 200);
}

// The compensation handler the compensation tests point their tasks at: activity `Undo`.
inline void bind_undo_activity(AppUnderTest& t, const std::string& admin) {
    bind_script_activity(
        t, admin, "Undo", "undo",
        R"([{"name":"event","type":"string"},{"name":"element","type":"string"}])");
}

inline bool has_pending(const json::value& instance, const std::string& node) {
    for (const auto& task : instance.at("tasks").as_array()) {
        if (task.at("node_id") == json::value(node) && task.at("status") == "pending") {
            return true;
        }
    }
    return false;
}

// Makes the first `operation` (UPDATE or INSERT) of a row of `table` that matches `when` (a
// trigger's WHEN over OLD and NEW; NEW only for an INSERT) fail, as if the step's attempt died
// right there: its transaction rolls back, what the attempt committed before stays, and Inngest
// retries the step. Later ones pass. `name` names the trigger (and its sequence, which counts the
// matching writes: a sequence is not rolled back with them).
inline void fail_first_write(AppUnderTest& t,
                             const std::string& name,
                             const std::string& operation,
                             const std::string& table,
                             const std::string& when) {
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    riveredge::core::db::transact(owner, std::nullopt, [&](riveredge::core::db::Transaction& tx) {
        tx.exec("CREATE SEQUENCE " + name);
        tx.exec("CREATE FUNCTION " + name +
                "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN IF nextval('" +
                name +
                "') = 1 THEN RAISE EXCEPTION 'test: the attempt dies here'; END IF; RETURN NEW; "
                "END $$");
        tx.exec("CREATE TRIGGER " + name + " BEFORE " + operation + " ON " + table +
                " FOR EACH ROW WHEN (" + when + ") EXECUTE FUNCTION " + name + "()");
    });
}

inline void fail_first_update(AppUnderTest& t,
                              const std::string& name,
                              const std::string& table,
                              const std::string& when) {
    fail_first_write(t, name, "UPDATE", table, when);
}

inline void fail_first_insert(AppUnderTest& t,
                              const std::string& name,
                              const std::string& table,
                              const std::string& when) {
    fail_first_write(t, name, "INSERT", table, when);
}

// Makes every INSERT of a row of `table` that matches `when` fail, until the trigger `name` is
// dropped (DROP TRIGGER <name> ON <table>): a step that fails through all its retries.
inline void fail_every_insert(AppUnderTest& t,
                              const std::string& name,
                              const std::string& table,
                              const std::string& when) {
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    riveredge::core::db::transact(owner, std::nullopt, [&](riveredge::core::db::Transaction& tx) {
        tx.exec("CREATE FUNCTION " + name +
                "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RAISE EXCEPTION "
                "'test: every attempt dies here'; END $$");
        tx.exec("CREATE TRIGGER " + name + " BEFORE INSERT ON " + table + " FOR EACH ROW WHEN (" +
                when + ") EXECUTE FUNCTION " + name + "()");
    });
}

inline void drop_trigger(AppUnderTest& t, const std::string& name, const std::string& table) {
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    riveredge::core::db::exec_once(owner, std::nullopt, "DROP TRIGGER " + name + " ON " + table);
}

// How many writes the trigger of fail_first_write met (the first one failed).
inline std::int64_t updates_met(AppUnderTest& t, const std::string& name) {
    riveredge::core::db::Pool owner(t.settings().migration_database_url.value(), 1);
    const auto rows = riveredge::core::db::exec_once(
        owner, std::nullopt,
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM " + name);
    return rows.integer(0, "n");
}

struct Flow {
    AppUnderTest& t;
    inngest::local::ManualClock& clock;

    // Waits for `predicate` on the instance; if it does not hold soon, moves the clock past the
    // instance's re-check interval (a decision that beat the wait) and waits again.
    json::value wait_instance(const std::string& token,
                              std::int64_t id,
                              const std::function<bool(const json::value&)>& predicate,
                              int rounds = 3) {
        for (int round = 0; round < rounds; ++round) {
            for (int i = 0; i < 120; ++i) {
                const auto r =
                    t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id), token);
                if (r.status == 200 && predicate(r.body)) {
                    return r.body;
                }
                std::this_thread::sleep_for(25ms);
            }
            clock.advance(std::chrono::minutes(16));
            t.app().executor()->poke();
        }
        return nullptr;
    }

    json::value wait_pending(const std::string& token, std::int64_t id, const std::string& node) {
        return wait_instance(token, id, [&](const json::value& i) { return has_pending(i, node); });
    }

    json::value wait_done(const std::string& token, std::int64_t id) {
        return wait_instance(token, id,
                             [](const json::value& i) { return i.at("status") != "running"; });
    }

    std::int64_t pending_task(const json::value& instance,
                              const std::string& node,
                              const std::string& assignee = {}) {
        for (const auto& task : instance.at("tasks").as_array()) {
            if (task.at("node_id") == json::value(node) && task.at("status") == "pending" &&
                (assignee.empty() || task.at("assignee") == json::value(assignee))) {
                return task.at("id").as_int64();
            }
        }
        return 0;
    }

    /// Imports and publishes a ProFlow or seed-format source; returns the definition id.
    std::int64_t publish(const std::string& token, const std::string& source) {
        const auto created =
            t.call("POST", "/api/v1/approvals/definitions", token, import_body(source));
        REQUIRE(created.status == 201);
        const auto id = created.body.at("id").as_int64();
        const auto published = t.call(
            "POST", "/api/v1/approvals/definitions/" + std::to_string(id) + "/publish", token);
        INFO(json::serialize(published.body));
        REQUIRE(published.status == 201);
        return id;
    }

    std::int64_t start(const std::string& token,
                       std::int64_t definition,
                       const std::string& variables = "{}") {
        const auto r = t.call("POST", "/api/v1/approvals/instances", token,
                              R"({"definition_id":)" + std::to_string(definition) +
                                  R"(,"variables":)" + variables + "}");
        INFO(json::serialize(r.body));
        REQUIRE(r.status == 201);
        return r.body.at("id").as_int64();
    }

    Response act(const std::string& token,
                 std::int64_t task,
                 const std::string& action,
                 const std::string& body = "{}") {
        return t.call("POST", "/api/v1/approvals/tasks/" + std::to_string(task) + "/" + action,
                      token, body);
    }

    std::vector<std::string> timeline_actions(const std::string& token, std::int64_t id) {
        std::vector<std::string> actions;
        const auto timeline =
            t.call("GET", "/api/v1/approvals/instances/" + std::to_string(id) + "/timeline", token);
        for (const auto& entry : timeline.body.at("timeline").as_array()) {
            actions.emplace_back(entry.at("action").as_string());
        }
        return actions;
    }
};

}  // namespace riveredge_test::approvals
