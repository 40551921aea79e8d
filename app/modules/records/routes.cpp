// HTTP in and out for electronic records: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "modules/records/service.hpp"

namespace riveredge::records {
namespace {

using enum core::Access;
using core::Call;

constexpr const char* kRecordSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"type":{"type":"string"},"business_key":{"type":"string"},
    "title":{"type":"string"},
    "state":{"enum":["draft","in_review","effective","superseded","obsolete","archived","deleted"]},
    "latest_version":{"type":"integer"},"state_reason":{"type":"string","nullable":true},
    "retain_until":{"type":"string","format":"date-time","nullable":true},
    "created_by":{"type":"string"},"created_at":{"type":"string","format":"date-time"},
    "updated_at":{"type":"string","format":"date-time"},"content":{"type":"object"},
    "content_hash":{"type":"string","description":"SHA-256 of the content's RFC 8785 form"},
    "signatures":{"type":"array","items":{"type":"object"}},"signatures_valid":{"type":"boolean"}}})";

constexpr const char* kSignatureSchema = R"({"type":"object","properties":{
    "id":{"type":"integer"},"record_id":{"type":"integer"},"version":{"type":"integer"},
    "signer_id":{"type":"string"},"printed_name":{"type":"string"},"meaning":{"type":"string"},
    "reason":{"type":"string"},"signed_at":{"type":"string","format":"date-time"},
    "content_hash":{"type":"string"},"key_id":{"type":"string"},
    "step_key":{"type":"string","nullable":true,"description":"the workflow step that asked for it"},
    "valid":{"type":"boolean"},
    "problem":{"type":"string","nullable":true}}})";

constexpr const char* kSettingsSchema = R"({"type":"object","properties":{
    "custom_meanings":{"type":"array","items":{"type":"string"},"maxItems":50},
    "security_contacts":{"type":"array","items":{"type":"string"},"maxItems":50,
      "description":"users told when a signer is locked out"},
    "retention_days":{"type":"integer","minimum":0,"maximum":36500,
      "description":"how long a deleted record is kept before it may be purged"}}})";

// Who acts and from where, for the audit trail.
Actor actor_of(Service& service, const Call& call) {
    auto [address, user_agent] = call.origin();
    return service.actor(call.who(), std::move(address), std::move(user_agent));
}

}  // namespace

void register_routes(core::Router& router, Service& service) {
    // Literal paths before /records/{id}, which would otherwise take them.
    router
        .put("/api/v1/records/signing-password", kUser,
             "Set (or, with the current one, change) the caller's signing password and "
             "printed name")
        .accepts(R"({"type":"object","required":["password","printed_name"],
        "properties":{"password":{"type":"string","minLength":10},
        "printed_name":{"type":"string"},"current_password":{"type":"string"}}})")
        .to([&service](Call& call) {
            return service.set_signing_password(actor_of(service, call), call.body());
        });
    router
        .get("/api/v1/records/settings", kUser,
             "The tenant's signature meanings, security contacts "
             "and retention")
        .returns(kSettingsSchema)
        .to([&service](Call& call) { return service.settings(call.tenant()); });
    router
        .put("/api/v1/records/settings", kAdmin,
             "Change the records settings (role admin; audited)")
        .accepts(kSettingsSchema)
        .returns(kSettingsSchema)
        .to([&service](Call& call) {
            return service.save_settings(actor_of(service, call), call.body());
        });
    router
        .get("/api/v1/records/audit/verify", kAdmin,
             "Walk the tenant's audit hash chain; names the first broken row")
        .returns(R"({"type":"object","properties":{"valid":{"type":"boolean"},
        "rows":{"type":"integer"},"first_broken":{"type":"object","properties":{
        "seq":{"type":"integer"},"id":{"type":"integer"},"problem":{"type":"string"}}}}})")
        .to([&service](Call& call) { return service.verify_chain(actor_of(service, call)); });

    router.post("/api/v1/records", kUser, "Create a record as a draft (version 1)")
        .accepts(R"({"type":"object",
        "required":["type","business_key","title","content"],"properties":{
        "type":{"type":"string","maxLength":100},"business_key":{"type":"string","maxLength":200},
        "title":{"type":"string","maxLength":500},"content":{"type":"object"}}})")
        .returns(kRecordSchema)
        .status(201)
        .to([&service](Call& call) {
            return service.create(actor_of(service, call), call.body());
        });
    router.get("/api/v1/records", kUser, "List records")
        .returns(kRecordSchema)
        .lists(kRecordList)
        .to([&service](Call& call) {
            return call.list(service.repository().list(call.tenant(), call.paging()));
        });
    router
        .get("/api/v1/records/{id}", kUser,
             "A record with its latest content and every "
             "signature's manifestation, verified")
        .returns(kRecordSchema)
        .to([&service](Call& call) { return service.get(call.tenant(), call.id()); });
    router
        .put("/api/v1/records/{id}", kUser,
             "Change a draft's content: a new immutable version, with a reason")
        .accepts(R"({"type":"object","required":["content","reason"],
        "properties":{"title":{"type":"string"},"content":{"type":"object"},
        "reason":{"type":"string","maxLength":1000}}})")
        .returns(kRecordSchema)
        .to([&service](Call& call) {
            return service.update(actor_of(service, call), call.id(), call.body());
        });
    router
        .post("/api/v1/records/{id}/transitions", kUser,
              "Move a record: submit, return (reason), make_effective (admin, after an "
              "approval signature), supersede, obsolete, archive, delete (admin, reason)")
        .accepts(R"({"type":"object","required":["action"],"properties":{
        "action":{"enum":["submit","return","make_effective","supersede","obsolete","archive","delete"]},
        "reason":{"type":"string","maxLength":1000}}})")
        .returns(kRecordSchema)
        .also(202)
        .to([&service](Call& call) {
            auto out = service.transition(actor_of(service, call), call.id(), call.body());
            // An archive is asked for here and made by the records-archive function.
            if (out.contains("archive")) {
                call.answer(202);
            }
            return out;
        });
    router
        .post("/api/v1/records/{id}/purge", kAdmin,
              "Remove a deleted record whose retention has passed "
              "(409 before; the trail keeps the purge)")
        .to([&service](Call& call) {
            service.purge(actor_of(service, call), call.id());
            return boost::json::object{{"purged", true}};
        });
    router
        .post("/api/v1/records/{id}/signatures", kUser,
              "Sign the latest version: user_id and signing password (the password "
              "alone within a 15-minute signing session); five wrong passwords lock "
              "signing for 30 minutes")
        .accepts(R"({"type":"object","required":["meaning","reason","password"],
        "properties":{"meaning":{"type":"string",
        "description":"authorship, review, approval, responsibility or a tenant-defined meaning"},
        "reason":{"type":"string","maxLength":1000},"password":{"type":"string"},
        "user_id":{"type":"string"}}})")
        .returns(kSignatureSchema)
        .status(201)
        .to([&service](Call& call) {
            return service.sign(actor_of(service, call), call.id(), call.body());
        });
    router
        .get("/api/v1/records/{id}/signatures/verify", kUser,
             "Verify each signature against the content it sealed")
        .returns(R"({"type":"object","properties":{
        "record_id":{"type":"integer"},"valid":{"type":"boolean"},
        "signatures":{"type":"array","items":)" +
                 std::string(kSignatureSchema) + "}}}")
        .to([&service](Call& call) { return service.verify_signatures(call.tenant(), call.id()); });
    router
        .get("/api/v1/records/{id}/audit", kUser,
             "The record's audit trail, oldest first (reading it "
             "is audited)")
        .to([&service](Call& call) { return service.trail(actor_of(service, call), call.id()); });
    router
        .get("/api/v1/records/{id}/export", kUser,
             "The record, its versions, verified signatures and "
             "audit trail as one JSON document (audited)")
        .to([&service](Call& call) {
            return service.export_record(actor_of(service, call), call.id());
        });
    router
        .get("/api/v1/records/{id}/export/pdf", kUser,
             "The record as a printable PDF: content, attachments, "
             "each signature's manifestation (printed name, meaning, "
             "UTC time, reason, verified) and the audit trail "
             "(audited)")
        .to([&service](Call& call) {
            auto pdf = service.export_pdf(actor_of(service, call), call.id());
            return core::bytes_response("application/pdf", std::move(pdf.bytes),
                                        {{"X-Pages", std::to_string(pdf.pages)}});
        });
    router
        .post("/api/v1/records/attachments", kUser,
              "Keep attachment bytes (the raw body, with its Content-Type) under their "
              "SHA-256; a version names them in its content's `attachments` "
              "[{name, sha256}], so its signatures cover them")
        .returns(R"({"type":"object","properties":{"sha256":{"type":"string"},
        "size":{"type":"integer"},"media_type":{"type":"string"},
        "stored":{"enum":["new","already kept"]}}})")
        .status(201)
        .to([&service](Call& call) {
            return service.upload_attachment(actor_of(service, call),
                                             std::string(call.request.header("Content-Type")),
                                             std::string(call.request.body));
        });
    router
        .get("/api/v1/records/{id}/attachments/{sha256}", kUser,
             "The bytes of an attachment a version of the record "
             "names (409 when they no longer match their hash)")
        .to([&service](Call& call) {
            auto attachment =
                service.download_attachment(call.tenant(), call.id(), call.param("sha256"));
            return core::bytes_response(
                attachment.media_type, std::move(attachment.bytes),
                {{"Content-Disposition", "attachment"}, {"X-Content-SHA256", attachment.sha256}});
        });
    router
        .get("/api/v1/records/{id}/archive", kUser,
             "The sealed archive package of an archived record, its "
             "hash and seal re-verified (reading it is audited)")
        .to([&service](Call& call) {
            return service.read_archive(actor_of(service, call), call.id());
        });
    core::add_version_routes(router, {"/api/v1/records/{id}", "record"}, service);
}

}  // namespace riveredge::records
