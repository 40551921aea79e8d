// HTTP in and out for print devices: printers (administrators register them), print jobs,
// cancel and reprint.

#include "core/errors.hpp"
#include "core/http/router.hpp"
#include "modules/print_devices/service.hpp"

namespace riveredge::devices {
namespace {

namespace json = boost::json;
using enum core::Access;
using core::Call;

constexpr const char* kOptionsSchema = R"({"type":"object","properties":{
    "media":{"type":"string","example":"iso_a4_210x297mm"},
    "duplex":{"enum":["one-sided","two-sided-long-edge","two-sided-short-edge"]},
    "copies":{"type":"integer","minimum":1,"maximum":100}}})";

constexpr const char* kPrinterRequest = R"({"type":"object","required":["name"],"properties":{
    "name":{"type":"string","maxLength":100},"site":{"type":"string","maxLength":100},
    "kind":{"enum":["office","label"],"default":"office"},
    "transport":{"enum":["cups","ipp","agent"],"default":"cups","description":"cups prints now; ipp and agent are registered for later"},
    "cups_queue":{"type":"string","description":"<tenant>-<name>: the CUPS queue, which must exist"},
    "ipp_uri":{"type":"string"},"agent_id":{"type":"string"},
    "defaults":{"type":"object","description":"media, duplex, copies"},
    "owners":{"type":"array","items":{"type":"string"},"description":"user ids told about health changes and failed jobs; default the registering user"}}})";

constexpr const char* kPrinterSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"name":{"type":"string"},"site":{"type":"string"},
    "kind":{"enum":["office","label"]},"transport":{"enum":["cups","ipp","agent"]},
    "cups_queue":{"type":"string","nullable":true},"ipp_uri":{"type":"string","nullable":true},
    "agent_id":{"type":"string","nullable":true},"defaults":{"type":"object"},
    "capabilities":{"type":"object","description":"make_and_model, media_supported, media_default, sides_supported, document_formats, as CUPS reports them"},
    "owners":{"type":"array","items":{"type":"string"}},
    "health":{"type":"object","properties":{
        "state":{"enum":["unknown","ready","paused","offline","media_empty","error","missing"]},
        "reasons":{"type":"array","items":{"type":"string"}},"message":{"type":"string"},
        "checked_at":{"type":"string","format":"date-time","nullable":true},
        "changed_at":{"type":"string","format":"date-time","nullable":true}}},
    "created_by":{"type":"string"},"created_at":{"type":"string","format":"date-time"},
    "updated_at":{"type":"string","format":"date-time"}}})";

constexpr const char* kReprintRequest = R"({"type":"object","properties":{
    "idempotency_key":{"type":"string","maxLength":200,"description":"a repeated reprint with the same key answers the job the first one made"}}})";

constexpr const char* kJobSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"printer_id":{"type":"integer"},"source":{"enum":["render","raw"]},
    "render_id":{"type":"integer","nullable":true},"format":{"type":"string"},
    "title":{"type":"string"},
    "document":{"type":"object","nullable":true,"properties":{"type":{"type":"string"},"id":{"type":"string"}}},
    "options":{"type":"object"},
    "status":{"enum":["queued","submitting","pending","held","processing","stopped","completed","canceled","aborted","failed"]},
    "cups_job_id":{"type":"integer","nullable":true},
    "state_reasons":{"type":"array","items":{"type":"string"}},
    "printer_message":{"type":"string"},"impressions":{"type":"integer","nullable":true},
    "error":{"type":"string","nullable":true},"cancel_requested":{"type":"boolean"},
    "deadline_at":{"type":"string","format":"date-time"},
    "reprint_of":{"type":"integer","nullable":true},"requested_by":{"type":"string"},
    "created_at":{"type":"string","format":"date-time"},
    "submitted_at":{"type":"string","format":"date-time","nullable":true},
    "finished_at":{"type":"string","format":"date-time","nullable":true}}})";

constexpr const char* kJobRequest = R"({"type":"object","required":["printer_id"],"properties":{
    "printer_id":{"type":"integer"},
    "render_id":{"type":"integer","description":"a done render of the print templates module, whose PDF is printed"},
    "raw_base64":{"type":"string","description":"raw bytes for the printer, such as ZPL for label printers, up to 1 MiB; exactly one of render_id and raw_base64"},
    "title":{"type":"string","maxLength":200},
    "document":{"type":"object","properties":{"type":{"type":"string"},"id":{"type":"string"}},"description":"the business document printed, for its job history"},
    "options":{"type":"object","description":"media, duplex, copies over the printer's defaults"},
    "deadline_seconds":{"type":"integer","minimum":5,"maximum":7200,"default":600,"description":"not printed by then: cancelled and failed, owners told"},
    "idempotency_key":{"type":"string","maxLength":200}}})";

}  // namespace

void register_routes(core::Router& router, Service& service) {
    router
        .post("/api/v1/print/printers", kAdmin,
              "Register a printer (its CUPS queue must exist and be "
              "named after the tenant)")
        .accepts(kPrinterRequest)
        .returns(kPrinterSchema)
        .status(201)
        .to([&service](Call& call) {
            return service.add_printer(call.who(), call.body()).to_json();
        });
    router.get("/api/v1/print/printers", kUser, "The tenant's printers with their health")
        .returns(kPrinterSchema)
        .lists(kPrinterList)
        .to([&service](Call& call) {
            return call.list(service.repository().list_printers(call.tenant(), call.paging()));
        });
    router.get("/api/v1/print/printers/{id}", kUser, "A printer with its capabilities and health")
        .returns(kPrinterSchema)
        .to([&service](Call& call) { return service.printer(call.tenant(), call.id()).to_json(); });
    router
        .put("/api/v1/print/printers/{id}", kAdmin,
             "Change a printer (members given replace the old)")
        .accepts(kPrinterRequest)
        .returns(kPrinterSchema)
        .to([&service](Call& call) {
            return service.update_printer(call.who(), call.id(), call.body()).to_json();
        });
    router
        .del("/api/v1/print/printers/{id}", kAdmin,
             "Remove a printer without print jobs (409 otherwise)")
        .to([&service](Call& call) {
            service.delete_printer(call.who(), call.id());
            return json::object{{"deleted", true}};
        });
    router
        .post("/api/v1/print/printers/{id}/check", kAdmin,
              "Read the printer's health from CUPS now (owners are "
              "told about a change)")
        .returns(kPrinterSchema)
        .to([&service](Call& call) {
            return service.check_printer(call.tenant(), call.id()).to_json();
        });
    router
        .post("/api/v1/print/jobs", kUser,
              "Print a done render or raw bytes (202; the print-job "
              "function sends it at most once and follows it)")
        .accepts(kJobRequest)
        .returns(kJobSchema)
        .status(202)
        .to([&service](Call& call) {
            return service.request_job(call.who(), call.body()).to_json();
        });
    router
        .get("/api/v1/print/jobs", kUser,
             "Print job history, by printer, business document or "
             "status")
        .returns(kJobSchema)
        .lists(kJobList)
        .to([&service](Call& call) {
            return call.list(service.repository().list_jobs(call.tenant(), call.paging()));
        });
    router.get("/api/v1/print/jobs/{id}", kUser, "A print job and its state in CUPS")
        .returns(kJobSchema)
        .to([&service](Call& call) { return service.current(call.tenant(), call.id()).to_json(); });
    router
        .post("/api/v1/print/jobs/{id}/cancel", kUser,
              "Cancel a job (its requester or an administrator)")
        .returns(kJobSchema)
        .to([&service](Call& call) { return service.cancel_job(call.who(), call.id()).to_json(); });
    router
        .post("/api/v1/print/jobs/{id}/reprint", kUser,
              "Print a finished job again, as a new job (202)")
        .accepts(kReprintRequest)
        .returns(kJobSchema)
        .status(202)
        .to([&service](Call& call) {
            return service.reprint(call.who(), call.id(), call.body_or_empty()).to_json();
        });
}

}  // namespace riveredge::devices
