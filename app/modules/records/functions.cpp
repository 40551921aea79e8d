// The records module's Inngest functions: the periodic integrity re-verification (Annex 11 §17:
// archived data checked for accessibility, readability and integrity) and the archive.

#include "core/errors.hpp"
#include "core/events.hpp"
#include "core/log/logger.hpp"
#include "modules/records/service.hpp"

#include <inngest/inngest.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <exception>

namespace riveredge::records {
namespace {

// Archives one record in one step: the package, its seal and the state change are one
// transaction, so a retried step finds the record archived and answers what was stored. In the
// nightly pass (`tolerant`) a record that cannot be archived is reported and the pass goes on,
// so one bad record never stops the others.
boost::json::value archive_step(inngest::Context& ctx,
                                Service& service,
                                const core::TenantId& tenant,
                                std::int64_t record_id,
                                bool tolerant) {
    return ctx.step.run("archive:" + tenant.value() + ":" + std::to_string(record_id), [&] {
        try {
            return service.archive(tenant, record_id);
        } catch (const core::DomainError& error) {
            if (tolerant) {
                return boost::json::object{
                    {"record_id", record_id}, {"archived", false}, {"error", error.what()}};
            }
            if (error.kind() == core::DomainError::Kind::kNotFound ||
                error.kind() == core::DomainError::Kind::kConflict) {
                // Purged since it was asked, or what it holds cannot be archived: a retry
                // would find the same.
                throw inngest::NonRetriableError(error.what());
            }
            throw;
        }
    });
}

}  // namespace

void register_functions(inngest::Client& client, Service& service) {
    client.create_function(
        {.id = "records-verify-integrity",
         .name = "Re-verify electronic records: audit chains and signatures",
         .triggers = {inngest::CronTrigger{"TZ=UTC 0 2 * * *"}},
         .concurrency = {{.limit = 1}}},
        [&service](inngest::Context& ctx) {
            const auto tenants = ctx.step.run("tenants", [&] {
                const auto found = service.tenants_with_trail();
                return boost::json::array(found.begin(), found.end());
            });
            // The day the check was scheduled for (its event's time, the
            // same on every retry): a retry after midnight is the same
            // night's check and sends no second notice.
            const std::int64_t ms =
                ctx.event.ts.value_or(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
            const std::int64_t day = ms / (24 * 60 * 60 * 1000);
            boost::json::array failed;
            boost::json::object unchecked;  // tenant -> why its check could not be made
            for (const auto& tenant : tenants) {
                const std::string id(tenant.as_string());
                // One step per tenant: a retry re-checks only the tenants not
                // done yet. A tenant whose check fails through its retries is
                // logged and the others are still checked; the run then fails.
                try {
                    const auto result = ctx.step.run("verify:" + id, [&] {
                        try {
                            return service.check_integrity(core::TenantId::trusted(id), day);
                        } catch (const std::exception& error) {
                            // Logged where the last attempt fails: the StepError below is
                            // replayed on every later invocation of the run.
                            if (ctx.run.attempt + 1 >= ctx.run.max_attempts ||
                                dynamic_cast<const inngest::NonRetriableError*>(&error) !=
                                    nullptr) {
                                core::log(core::LogLevel::kError,
                                          "records integrity check could not be made",
                                          {{"tenant", id}, {"error", error.what()}});
                            }
                            throw;
                        }
                    });
                    if (!result.at("intact").as_bool()) {
                        failed.emplace_back(id);
                    }
                } catch (const inngest::StepError& error) {
                    failed.emplace_back(id);
                    unchecked[id] = error.what();
                }
            }
            if (!unchecked.empty()) {
                throw inngest::NonRetriableError(
                    "the integrity check could not be made for " +
                    std::to_string(unchecked.size()) +
                    " tenant(s): " + boost::json::serialize(unchecked) +
                    "; not intact or not checked: " + boost::json::serialize(failed));
            }
            return boost::json::object{{"tenants", static_cast<std::int64_t>(tenants.size())},
                                       {"failed", std::move(failed)}};
        });

    client.create_function({.id = "records-lockout-notice",
                            .name = "Tell a locked-out signer and the security contacts",
                            .triggers = {inngest::EventTrigger{kSigningLocked}}},
                           [&service](inngest::Context& ctx) {
                               const auto tenant = core::event_tenant(ctx.event.data);
                               const auto* user = ctx.event.data.if_contains("user_id");
                               const auto* notice = ctx.event.data.if_contains("notice_id");
                               if (user == nullptr || !user->is_string() || notice == nullptr ||
                                   !notice->is_string()) {
                                   throw inngest::NonRetriableError(
                                       "records/signing.locked needs user_id and notice_id");
                               }
                               return ctx.step.run("notify", [&] {
                                   return service.notify_lockout(tenant,
                                                                 std::string(user->get_string()),
                                                                 std::string(notice->get_string()));
                               });
                           });

    // An administrator's request (an event written with the request, through the outbox), or
    // the nightly pass over what is due: asked for and not done, or superseded or obsolete
    // longer than the tenant's `archive_after_days`.
    client.create_function(
        {.id = "records-archive",
         .name = "Archive electronic records: a sealed package of record, signatures and trail",
         .triggers = {inngest::EventTrigger{kArchiveRequested},
                      inngest::CronTrigger{"TZ=UTC 30 2 * * *"}},
         .concurrency = {{.limit = 2}}},
        [&service](inngest::Context& ctx) {
            const auto& data = ctx.event.data;
            if (ctx.event.name == kArchiveRequested) {
                const auto tenant = core::event_tenant(data);
                return archive_step(ctx, service, tenant,
                                    core::event_int(data, "record_id", kArchiveRequested), false);
            }
            const auto due = ctx.step.run("due", [&] {
                boost::json::array out;
                for (const auto& [tenant, id] : service.due_archives(500)) {
                    out.push_back(boost::json::object{{"tenant_id", tenant}, {"record_id", id}});
                }
                return out;
            });
            boost::json::array archived;
            for (const auto& item : due) {
                const auto& entry = item.as_object();
                const auto result = archive_step(
                    ctx, service,
                    core::TenantId::trusted(std::string(entry.at("tenant_id").as_string())),
                    entry.at("record_id").as_int64(), true);
                if (result.at("archived").as_bool()) {
                    archived.push_back(item);
                }
            }
            return boost::json::value(boost::json::object{{"archived", std::move(archived)}});
        });
}

}  // namespace riveredge::records
