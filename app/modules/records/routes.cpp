// HTTP in and out for electronic records: parse, call the service, write JSON.

#include "core/http/router.hpp"
#include "core/http/version_routes.hpp"
#include "modules/records/service.hpp"

namespace riveredge::records {
namespace {

using core::id_param;
using core::json_response;
using core::query_filter;
using core::RequestContext;
using inngest::HttpRequest;

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
Actor actor_of(Service& service, const HttpRequest& request, const RequestContext& context) {
    return service.actor(context.who(), request.remote_address,
                         std::string(request.header("User-Agent").substr(0, 300)));
}

}  // namespace

void register_routes(core::Router& router, Service& service) {
    // Literal paths before /records/{id}, which would otherwise take them.
    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/records/signing-password",
            .access = core::Access::kUser,
            .summary = "Set (or, with the current one, change) the caller's signing password and "
                       "printed name",
            .request_schema = R"({"type":"object","required":["password","printed_name"],
        "properties":{"password":{"type":"string","minLength":10},
        "printed_name":{"type":"string"},"current_password":{"type":"string"}}})"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200,
                                 service.set_signing_password(actor_of(service, request, context),
                                                              context.json_body(request)));
        });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/settings",
                               .access = core::Access::kUser,
                               .summary = "The tenant's signature meanings, security contacts "
                                          "and retention",
                               .response_schema = kSettingsSchema},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(200, service.settings(context.who().tenant));
               });
    router.add(core::RouteSpec{.method = "PUT",
                               .pattern = "/api/v1/records/settings",
                               .access = core::Access::kAdmin,
                               .summary = "Change the records settings (role admin; audited)",
                               .request_schema = kSettingsSchema,
                               .response_schema = kSettingsSchema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(200,
                                        service.save_settings(actor_of(service, request, context),
                                                              context.json_body(request)));
               });
    router.add(
        core::RouteSpec{
            .method = "GET",
            .pattern = "/api/v1/records/audit/verify",
            .access = core::Access::kAdmin,
            .summary = "Walk the tenant's audit hash chain; names the first broken row",
            .response_schema = R"({"type":"object","properties":{"valid":{"type":"boolean"},
        "rows":{"type":"integer"},"first_broken":{"type":"object","properties":{
        "seq":{"type":"integer"},"id":{"type":"integer"},"problem":{"type":"string"}}}}})"},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(200, service.verify_chain(actor_of(service, request, context)));
        });

    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/records",
                               .access = core::Access::kUser,
                               .summary = "Create a record as a draft (version 1)",
                               .request_schema = R"({"type":"object",
        "required":["type","business_key","title","content"],"properties":{
        "type":{"type":"string","maxLength":100},"business_key":{"type":"string","maxLength":200},
        "title":{"type":"string","maxLength":500},"content":{"type":"object"}}})",
                               .response_schema = kRecordSchema},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(201, service.create(actor_of(service, request, context),
                                                            context.json_body(request)));
               });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records",
                               .access = core::Access::kUser,
                               .summary = "List records",
                               .response_schema = kRecordSchema,
                               .list = &kRecordList},
               [&service](const HttpRequest&, RequestContext& context) {
                   const auto page = service.repository().list(
                       context.who().tenant, query_filter(context, "type"),
                       query_filter(context, "state"), query_filter(context, "business_key"),
                       context.list);
                   return core::list_response(context, page);
               });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}",
                               .access = core::Access::kUser,
                               .summary = "A record with its latest content and every "
                                          "signature's manifestation, verified",
                               .response_schema = kRecordSchema},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(200,
                                        service.get(context.who().tenant, id_param(context, "id")));
               });
    router.add(
        core::RouteSpec{
            .method = "PUT",
            .pattern = "/api/v1/records/{id}",
            .access = core::Access::kUser,
            .summary = "Change a draft's content: a new immutable version, with a reason",
            .request_schema = R"({"type":"object","required":["content","reason"],
        "properties":{"title":{"type":"string"},"content":{"type":"object"},
        "reason":{"type":"string","maxLength":1000}}})",
            .response_schema = kRecordSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(
                200, service.update(actor_of(service, request, context), id_param(context, "id"),
                                    context.json_body(request)));
        });
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/records/{id}/transitions",
            .access = core::Access::kUser,
            .summary = "Move a record: submit, return (reason), make_effective (admin, after an "
                       "approval signature), supersede, obsolete, archive, delete (admin, reason)",
            .request_schema = R"({"type":"object","required":["action"],"properties":{
        "action":{"enum":["submit","return","make_effective","supersede","obsolete","archive","delete"]},
        "reason":{"type":"string","maxLength":1000}}})",
            .response_schema = kRecordSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            auto out = service.transition(actor_of(service, request, context),
                                          id_param(context, "id"), context.json_body(request));
            // An archive is asked for here and made by the records-archive function.
            return json_response(out.contains("archive") ? 202 : 200, out);
        });
    router.add(core::RouteSpec{.method = "POST",
                               .pattern = "/api/v1/records/{id}/purge",
                               .access = core::Access::kAdmin,
                               .summary = "Remove a deleted record whose retention has passed "
                                          "(409 before; the trail keeps the purge)"},
               [&service](const HttpRequest& request, RequestContext& context) {
                   service.purge(actor_of(service, request, context), id_param(context, "id"));
                   return json_response(200, boost::json::object{{"purged", true}});
               });
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/records/{id}/signatures",
            .access = core::Access::kUser,
            .summary = "Sign the latest version: user_id and signing password (the password "
                       "alone within a 15-minute signing session); five wrong passwords lock "
                       "signing for 30 minutes",
            .request_schema = R"({"type":"object","required":["meaning","reason","password"],
        "properties":{"meaning":{"type":"string",
        "description":"authorship, review, approval, responsibility or a tenant-defined meaning"},
        "reason":{"type":"string","maxLength":1000},"password":{"type":"string"},
        "user_id":{"type":"string"}}})",
            .response_schema = kSignatureSchema},
        [&service](const HttpRequest& request, RequestContext& context) {
            return json_response(
                201, service.sign(actor_of(service, request, context), id_param(context, "id"),
                                  context.json_body(request)));
        });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}/signatures/verify",
                               .access = core::Access::kUser,
                               .summary = "Verify each signature against the content it sealed",
                               .response_schema = R"({"type":"object","properties":{
        "record_id":{"type":"integer"},"valid":{"type":"boolean"},
        "signatures":{"type":"array","items":)" + std::string(kSignatureSchema) +
                                                  "}}}"},
               [&service](const HttpRequest&, RequestContext& context) {
                   return json_response(200, service.verify_signatures(context.who().tenant,
                                                                       id_param(context, "id")));
               });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}/audit",
                               .access = core::Access::kUser,
                               .summary = "The record's audit trail, oldest first (reading it "
                                          "is audited)"},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(200, service.trail(actor_of(service, request, context),
                                                           id_param(context, "id")));
               });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}/export",
                               .access = core::Access::kUser,
                               .summary = "The record, its versions, verified signatures and "
                                          "audit trail as one JSON document (audited)"},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(200,
                                        service.export_record(actor_of(service, request, context),
                                                              id_param(context, "id")));
               });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}/export/pdf",
                               .access = core::Access::kUser,
                               .summary = "The record as a printable PDF: content, attachments, "
                                          "each signature's manifestation (printed name, meaning, "
                                          "UTC time, reason, verified) and the audit trail "
                                          "(audited)"},
               [&service](const HttpRequest& request, RequestContext& context) {
                   auto pdf = service.export_pdf(actor_of(service, request, context),
                                                 id_param(context, "id"));
                   return core::bytes_response("application/pdf", std::move(pdf.bytes),
                                               {{"X-Pages", std::to_string(pdf.pages)}});
               });
    router.add(
        core::RouteSpec{
            .method = "POST",
            .pattern = "/api/v1/records/attachments",
            .access = core::Access::kUser,
            .summary = "Keep attachment bytes (the raw body, with its Content-Type) under their "
                       "SHA-256; a version names them in its content's `attachments` "
                       "[{name, sha256}], so its signatures cover them",
            .response_schema = R"({"type":"object","properties":{"sha256":{"type":"string"},
        "size":{"type":"integer"},"media_type":{"type":"string"},
        "stored":{"enum":["new","already kept"]}}})"},
        [&service](const HttpRequest& request, RequestContext& context) {
            auto body = request.body;
            return json_response(
                201, service.upload_attachment(actor_of(service, request, context),
                                               std::string(request.header("Content-Type")),
                                               std::move(body)));
        });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}/attachments/{sha256}",
                               .access = core::Access::kUser,
                               .summary = "The bytes of an attachment a version of the record "
                                          "names (409 when they no longer match their hash)"},
               [&service](const HttpRequest&, RequestContext& context) {
                   auto attachment = service.download_attachment(
                       context.who().tenant, id_param(context, "id"), context.params.at("sha256"));
                   return core::bytes_response(attachment.media_type, std::move(attachment.bytes),
                                               {{"Content-Disposition", "attachment"},
                                                {"X-Content-SHA256", attachment.sha256}});
               });
    router.add(core::RouteSpec{.method = "GET",
                               .pattern = "/api/v1/records/{id}/archive",
                               .access = core::Access::kUser,
                               .summary = "The sealed archive package of an archived record, its "
                                          "hash and seal re-verified (reading it is audited)"},
               [&service](const HttpRequest& request, RequestContext& context) {
                   return json_response(200,
                                        service.read_archive(actor_of(service, request, context),
                                                             id_param(context, "id")));
               });
    core::add_version_routes(router, {"/api/v1/records/{id}", "record"}, service);
}

}  // namespace riveredge::records
