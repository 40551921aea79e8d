// The app beside an Inngest of its own process, as users run it beside `inngest dev -u`: a
// separate inngest-local, first as a dev server (unsigned, INNGEST_DEV), then as Inngest Cloud
// would be (signing and event keys, INNGEST_BASE_URL, INNGEST_DEV=0). Every module whose work
// runs through Inngest does one piece of it in both.

#include "app/app_under_test.hpp"
#include "app/records_support.hpp"
#include "core/text/base64.hpp"
#include "support/child_process.hpp"
#include "support/temp_cups.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>

using namespace riveredge_test;

namespace {

constexpr const char* kCloudSigningKey =
    "signkey-prod-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr const char* kCloudEventKey = "cloud-event-key-0123456789";

// inngest-local as its own process.
class ExternalInngest {
public:
    explicit ExternalInngest(bool cloud) : cloud_(cloud), port_(inngest_test::free_port()) {
        std::vector<std::string> argv{INNGEST_LOCAL_PATH, "--port", std::to_string(port_)};
        if (cloud) {
            argv.insert(argv.end(),
                        {"--signing-key", kCloudSigningKey, "--event-key", kCloudEventKey});
        }
        process_ = std::make_unique<inngest_test::ChildProcess>(
            argv, std::vector<std::string>{},
            "/tmp/riveredge-external-inngest-" + std::to_string(port_) + ".log");
        REQUIRE(process_->wait_healthy(url() + "/health", 30s));
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    // What a user sets for the app: the dev server's URL, or Cloud's keys and address.
    std::map<std::string, std::string> app_environment() const {
        if (!cloud_) {
            return {{"INNGEST_DEV", url()}};
        }
        return {{"INNGEST_DEV", "0"},
                {"INNGEST_SIGNING_KEY", kCloudSigningKey},
                {"INNGEST_EVENT_KEY", kCloudEventKey},
                {"INNGEST_BASE_URL", url()}};
    }

    // The dev server's "sync" (Cloud: the deploy's sync call), with the key Cloud's API wants.
    json::value sync(const AppUnderTest& app) const {
        const auto synced = call_url(
            "POST", url() + "/v1/apps", cloud_ ? kCloudSigningKey : "",
            R"({"url":"http://127.0.0.1:)" + std::to_string(app.port()) + R"(/api/inngest"})");
        INFO(json::serialize(synced.body) << "\n" << process_->log());
        REQUIRE(synced.status == 200);
        return synced.body;
    }

    std::string log() const { return process_->log(); }
    int port() const { return port_; }

private:
    bool cloud_;
    int port_;
    std::unique_ptr<inngest_test::ChildProcess> process_;
};

json::value poll(const std::function<json::value()>& read, int tries = 400) {
    for (int i = 0; i < tries; ++i) {
        if (auto value = read(); !value.is_null()) {
            return value;
        }
        std::this_thread::sleep_for(25ms);
    }
    return nullptr;
}

constexpr const char* kOneStepApproval = R"({"key":"buy","name":"Purchase","nodes":[
  {"id":"start","type":"startEvent"},
  {"id":"manager","type":"userTask","data":{"bpmn":{"approvers":[{"type":"user","value":"bob"}]}}},
  {"id":"end","type":"endEvent"}],
 "edges":[{"id":"1","source":"start","target":"manager"},{"id":"2","source":"manager","target":"end"}]})";

// One piece of each module's Inngest-driven work.
void walk_the_modules(const AppUnderTest& t, const ExternalInngest& inngest) {
    INFO("external Inngest log:\n" << inngest.log());
    const auto alice = t.token("acme", "alice", {"admin"});
    const auto bob = t.token("acme", "bob");

    // Messages: an in-app message is delivered by the messages function.
    REQUIRE(t.call("POST", "/api/v1/messages/send", alice,
                   R"({"subject":"s","body":"b","channels":["in_app"],"recipients":["bob"]})")
                .status == 201);
    CHECK(t.wait_unread(bob, 1));

    // Scripts: an asynchronous run is carried out by the scripts function.
    const auto script = t.call(
        "POST", "/api/v1/scripts", alice,
        R"({"name":"double","code":"function main(args) { return args.n * 2; }","parameters":[{"name":"n","type":"number","required":true}],"timeout_ms":2000})");
    REQUIRE(script.status == 201);
    const std::string script_path =
        "/api/v1/scripts/" + std::to_string(script.body.at("id").as_int64());
    const auto queued =
        t.call("POST", script_path + "/run", alice, R"({"mode":"async","arguments":{"n":21}})");
    REQUIRE(queued.status == 202);
    const auto run = poll([&]() -> json::value {
        const auto r = t.call("GET", script_path + "/runs", alice);
        const auto& first = r.body.at("items").at(0);
        return first.at("status") == "succeeded" ? first : json::value();
    });
    REQUIRE(run.is_object());
    CHECK(run.at("result") == 42);

    // Schedules: "run now" fires through the schedules function and sends its message.
    const auto schedule = t.call(
        "POST", "/api/v1/schedules", alice,
        R"({"name":"Nightly","code":"nightly","trigger":{"kind":"cron","cron":"0 3 * * *"},"action":{"type":"message","recipients":["bob"],"subject":"nightly","body":"ran"}})");
    INFO(json::serialize(schedule.body));
    REQUIRE(schedule.status == 201);
    const std::string schedule_path =
        "/api/v1/schedules/" + std::to_string(schedule.body.at("id").as_int64());
    REQUIRE(t.call("POST", schedule_path + "/run", alice).status == 202);
    const auto fired = poll([&]() -> json::value {
        const auto r = t.call("GET", schedule_path + "/fires?status=succeeded", alice);
        return r.body.at("items").as_array().empty() ? json::value() : r.body.at("items").at(0);
    });
    CHECK(fired.is_object());
    CHECK(t.wait_unread(bob, 2));

    // Approvals: an instance runs to bob's task, and his approval completes it.
    const auto definition = t.call("POST", "/api/v1/approvals/definitions", alice,
                                   std::string(R"({"source":)") + kOneStepApproval + "}");
    REQUIRE(definition.status == 201);
    const auto definition_id = definition.body.at("id").as_int64();
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/definitions/" + std::to_string(definition_id) + "/publish",
                   alice)
                .status == 201);
    const auto started =
        t.call("POST", "/api/v1/approvals/instances", alice,
               R"({"definition_id":)" + std::to_string(definition_id) + R"(,"variables":{}})");
    REQUIRE(started.status == 201);
    const std::string instance_path =
        "/api/v1/approvals/instances/" + std::to_string(started.body.at("id").as_int64());
    const auto task = poll([&]() -> json::value {
        const auto r = t.call("GET", "/api/v1/approvals/tasks", bob);
        const auto& items = r.body.at("items").as_array();
        return items.empty() ? json::value() : items.at(0).at("id");
    });
    REQUIRE(task.is_int64());
    REQUIRE(t.call("POST",
                   "/api/v1/approvals/tasks/" + std::to_string(task.as_int64()) + "/approve", bob,
                   R"({"comment":"ok"})")
                .status == 200);
    const auto done = poll([&]() -> json::value {
        const auto r = t.call("GET", instance_path, alice);
        return r.body.at("status") == "running" ? json::value() : r.body;
    });
    REQUIRE(done.is_object());
    CHECK(done.at("status") == "completed");

    // Electronic records: an archive request is carried out by the records-archive function.
    const auto people = records::people(t);
    records::set_password(t, people.alice, "Alice");
    const auto record = records::create_record(t, people.alice, "BR-EXT");
    REQUIRE(records::move(t, people.alice, record, "submit").status == 200);
    REQUIRE(records::sign(t, people.alice, record, "alice", "approval").status == 201);
    REQUIRE(records::move(t, people.alice, record, "make_effective").status == 200);
    REQUIRE(records::move(t, people.alice, record, "supersede", "replaced").status == 200);
    REQUIRE(records::move(t, people.alice, record, "archive").status == 202);
    REQUIRE(records::wait_state(t, people.alice, record, "archived"));
    const auto archive = t.call("GET", records::path(record, "/archive"), people.alice);
    REQUIRE(archive.status == 200);
    CHECK(archive.body.at("valid").as_bool());

    // Print templates: a render is made by the print-render function.
    auto r = t.call(
        "POST", "/api/v1/print/templates", alice,
        R"({"key":"label","name":"Label","template":{"page":{"width":100,"height":60},"elements":[{"type":"text","x":5,"y":5,"width":90,"height":10,"text":"SHIP {{order}}","font_size":14}]}})");
    REQUIRE(r.status == 201);
    const auto template_id = std::to_string(r.body.at("id").as_int64());
    REQUIRE(t.call("POST", "/api/v1/print/templates/" + template_id + "/publish", alice).status ==
            201);
    r = t.call("POST", "/api/v1/print/renders", alice,
               R"({"template_id":)" + template_id + R"(,"data":{"order":"SO-1"}})");
    REQUIRE(r.status == 202);
    const std::string render_path =
        "/api/v1/print/renders/" + std::to_string(r.body.at("id").as_int64());
    const auto rendered = poll([&]() -> json::value {
        const auto s = t.call("GET", render_path, alice);
        return s.body.at("status") == "done" ? s.body : json::value();
    });
    CHECK(rendered.is_object());

    // Print devices: a job reaches a raw label printer through CUPS, sent by the print-job
    // function.
    const inngest_test::RawPrinterListener label_printer;
    const std::string queue =
        "acme-external" + std::to_string(getpid()) + "_" + std::to_string(inngest.port());
    inngest_test::shared_cups().add_raw_queue(
        queue, "socket://127.0.0.1:" + std::to_string(label_printer.port()));
    r = t.call("POST", "/api/v1/print/printers", alice,
               R"({"name":"Label","site":"plant-1","kind":"label","cups_queue":")" + queue + "\"}");
    REQUIRE(r.status == 201);
    const std::string zpl = "^XA^FDEXTERNAL^FS^XZ\n";
    r = t.call("POST", "/api/v1/print/jobs", alice,
               R"({"printer_id":)" + std::to_string(r.body.at("id").as_int64()) +
                   R"(,"raw_base64":")" + riveredge::core::to_base64(zpl) + "\"}");
    REQUIRE(r.status == 202);
    const auto received = label_printer.wait_for(1, 30s);
    REQUIRE(received.size() == 1);
    CHECK(received[0] == zpl);

    // Workflows: a DAG with a parallel level, and a state machine moved by an event, both run
    // by the workflows-execution function.
    for (const auto* source : {
             R"({"key":"fan","kind":"dag","nodes":[{"id":"a","action":{"kind":"noop"}},
               {"id":"b","depends_on":["a"],"action":{"kind":"set","values":{"b":1}}},
               {"id":"c","depends_on":["a"],"action":{"kind":"set","values":{"c":2}}}]})",
             R"({"key":"door","kind":"state_machine","initial":"shut","states":{
               "shut":{"transitions":[{"event":"open","target":"open"}]},
               "open":{"final":true,"on_entry":{"kind":"set","values":{"opened":true}}}}})"}) {
        const auto imported = t.call("POST", "/api/v1/workflows/definitions", alice, source);
        INFO(json::serialize(imported.body));
        REQUIRE(imported.status == 201);
        REQUIRE(t.call("POST",
                       "/api/v1/workflows/definitions/" +
                           std::to_string(imported.body.at("id").as_int64()) +
                           "/versions/1/publish",
                       alice)
                    .status == 200);
    }
    const auto start_workflow = [&](const char* key) {
        const auto e = t.call("POST", "/api/v1/workflows/executions", alice,
                              std::string(R"({"definition_key":")") + key + R"("})");
        REQUIRE(e.status == 201);
        return "/api/v1/workflows/executions/" + std::to_string(e.body.at("id").as_int64());
    };
    const auto completed = [&](const std::string& path) {
        return poll([&]() -> json::value {
            const auto e = t.call("GET", path, alice);
            return e.body.at("status") == "completed" ? e.body : json::value();
        });
    };
    const auto fan = completed(start_workflow("fan"));
    REQUIRE(fan.is_object());
    CHECK(fan.at("context").at("c") == 2);
    const auto door = start_workflow("door");
    REQUIRE(t.call("POST", door + "/events", alice, R"({"event":"open"})").status == 202);
    const auto opened = completed(door);
    REQUIRE(opened.is_object());
    CHECK(opened.at("context").at("opened") == true);
}

AppUnderTestOptions beside(const ExternalInngest& inngest) {
    return AppUnderTestOptions{.records_seal_key_file = records::seal_key_file(),
                               .cups_server = inngest_test::shared_cups().server(),
                               .inngest_environment = inngest.app_environment()};
}

}  // namespace

TEST_CASE("the app beside a separate dev server (INNGEST_DEV) runs every module's functions",
          "[app][external]") {
    const ExternalInngest inngest(false);
    AppUnderTest t(beside(inngest));
    CHECK(t.app().executor() == nullptr);
    CHECK(t.call("GET", "/readyz").body.at("executor") == "external");
    CHECK(inngest.sync(t).at("functions").as_int64() >= 10);
    walk_the_modules(t, inngest);
}

TEST_CASE(
    "the app beside Inngest in cloud mode (signing and event keys) runs every module's "
    "functions",
    "[app][external]") {
    const ExternalInngest inngest(true);
    AppUnderTest t(beside(inngest));
    CHECK(t.app().executor() == nullptr);
    // Cloud mode: unsigned calls are refused.
    CHECK(t.call("POST", "/api/inngest?fnId=riveredge-flow-x&stepId=step", "", "{}").status == 401);
    CHECK(inngest.sync(t).at("functions").as_int64() >= 10);
    walk_the_modules(t, inngest);
}
