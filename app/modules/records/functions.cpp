// The records module's Inngest function: the periodic integrity re-verification (Annex 11 §17:
// archived data checked for accessibility, readability and integrity).

#include "modules/records/service.hpp"

#include <inngest/inngest.hpp>

namespace riveredge::records {

void register_functions(inngest::Client& client, Service& service) {
    client.create_function({.id = "records-verify-integrity",
                            .name = "Re-verify electronic records: audit chains and signatures",
                            .triggers = {inngest::CronTrigger{"TZ=UTC 0 2 * * *"}},
                            .concurrency = {{.limit = 1}}},
                           [&service](inngest::Context& ctx) {
                               const auto tenants = ctx.step.run("tenants", [&] {
                                   boost::json::array out;
                                   for (const auto& tenant : service.tenants_with_trail()) {
                                       out.emplace_back(tenant);
                                   }
                                   return out;
                               });
                               boost::json::array failed;
                               for (const auto& tenant : tenants) {
                                   const std::string id(tenant.as_string());
                                   // One step per tenant: a retry re-checks only the tenants not
                                   // done yet.
                                   const auto result = ctx.step.run("verify:" + id, [&] {
                                       return service.check_integrity(core::TenantId::trusted(id));
                                   });
                                   if (!result.at("intact").as_bool()) {
                                       failed.emplace_back(id);
                                   }
                               }
                               return boost::json::object{
                                   {"tenants", static_cast<std::int64_t>(tenants.size())},
                                   {"failed", std::move(failed)}};
                           });
}

}  // namespace riveredge::records
