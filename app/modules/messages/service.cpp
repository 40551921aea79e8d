#include "modules/messages/service.hpp"

#include "core/http/api_error.hpp"
#include "core/log/logger.hpp"

#include <inngest/client.hpp>

#include <set>

namespace riveredge::messages {
namespace {

constexpr std::size_t kMaxSubject = 500;
constexpr std::size_t kMaxBody = 64 * 1024;
constexpr std::size_t kMaxRecipients = 1000;

std::string required_text(const boost::json::object& request, const char* field, std::size_t max,
                          boost::json::object& problems) {
    const auto* value = request.if_contains(field);
    if (value == nullptr || !value->is_string() || value->get_string().empty()) {
        problems[field] = "required, a non-empty string";
        return {};
    }
    if (value->get_string().size() > max) {
        problems[field] = "at most " + std::to_string(max) + " bytes";
        return {};
    }
    return std::string(value->get_string());
}

}  // namespace

boost::json::object Service::send(const core::Principal& sender, const boost::json::object& request) {
    boost::json::object problems;
    const std::string subject = required_text(request, "subject", kMaxSubject, problems);
    const std::string body = required_text(request, "body", kMaxBody, problems);
    std::vector<NewDelivery> deliveries;
    std::set<std::string> channels;
    if (const auto* list = request.if_contains("channels"); list == nullptr || !list->is_array() ||
                                                            list->get_array().empty()) {
        problems["channels"] = "required, a non-empty array";
    } else {
        for (const auto& channel : list->get_array()) {
            if (!channel.is_string() || channel.get_string() != "in_app") {
                problems["channels"] = "supported channels: in_app";
                break;
            }
            channels.insert(std::string(channel.get_string()));
        }
    }
    const auto* recipients = request.if_contains("recipients");
    if (recipients == nullptr || !recipients->is_array() || recipients->get_array().empty() ||
        recipients->get_array().size() > kMaxRecipients) {
        problems["recipients"] = "required, an array of 1 to 1000 user ids";
    } else {
        std::set<std::string> seen;
        for (const auto& recipient : recipients->get_array()) {
            if (!recipient.is_string() || recipient.get_string().empty() ||
                recipient.get_string().size() > 200) {
                problems["recipients"] = "each recipient is a user id (1 to 200 characters)";
                break;
            }
            if (seen.insert(std::string(recipient.get_string())).second) {
                for (const auto& channel : channels) {
                    deliveries.push_back({channel, std::string(recipient.get_string())});
                }
            }
        }
    }
    std::optional<std::string> key;
    if (const auto* given = request.if_contains("idempotency_key"); given != nullptr && !given->is_null()) {
        if (!given->is_string() || given->get_string().empty() || given->get_string().size() > 200) {
            problems["idempotency_key"] = "a string of 1 to 200 characters";
        } else {
            key = std::string(given->get_string());
        }
    }
    if (!problems.empty()) {
        throw core::ApiError::validation(std::move(problems));
    }
    bool created = false;
    const std::int64_t id = record_and_emit(sender.tenant, sender.user_id, subject, body, key, deliveries, created);
    return boost::json::object{{"message_id", id}, {"created", created},
                               {"deliveries", static_cast<std::int64_t>(deliveries.size())}};
}

std::int64_t Service::notify(const core::TenantId& tenant, const std::string& sender,
                             const std::vector<std::string>& user_ids, const std::string& subject,
                             const std::string& body, const std::optional<std::string>& idempotency_key) {
    std::vector<NewDelivery> deliveries;
    for (const auto& user : user_ids) {
        deliveries.push_back({"in_app", user});
    }
    bool created = false;
    return record_and_emit(tenant, sender, subject, body, idempotency_key, deliveries, created);
}

std::int64_t Service::record_and_emit(const core::TenantId& tenant, const std::string& sender,
                                      const std::string& subject, const std::string& body,
                                      const std::optional<std::string>& idempotency_key,
                                      const std::vector<NewDelivery>& deliveries, bool& created) {
    if (idempotency_key) {
        if (const auto existing = repository_.find_by_idempotency_key(tenant, *idempotency_key)) {
            created = false;
            return *existing;
        }
    }
    std::int64_t id = 0;
    try {
        id = repository_.create_message(tenant, sender, subject, body, idempotency_key, deliveries);
    } catch (const core::db::DbError& error) {
        // Two concurrent sends with one key: the loser answers with the winner's message.
        if (error.sqlstate() == "23505" && idempotency_key) {
            if (const auto existing = repository_.find_by_idempotency_key(tenant, *idempotency_key)) {
                created = false;
                return *existing;
            }
        }
        throw;
    }
    created = true;
    // The event id makes a repeated emit (after a crash) start no second run.
    const auto sent = inngest_.send(inngest::Event{
        .name = kMessageRequested,
        .data = {{"tenant_id", tenant.value()}, {"message_id", id}},
        .id = "message-" + tenant.value() + "-" + std::to_string(id)});
    if (!sent) {
        core::log(core::LogLevel::kError, "could not emit messages/message.requested",
                  {{"tenant_id", tenant.value()}, {"message_id", id}, {"error", sent.error().message}});
        throw core::ApiError(503, "unavailable", "the message was recorded but could not be queued yet");
    }
    return id;
}

boost::json::object Service::deliver(const core::TenantId& tenant, std::int64_t delivery_id,
                                     const std::string& channel) {
    if (channel != "in_app") {
        throw std::runtime_error("channel " + channel + " is not deliverable yet");
    }
    const bool changed = repository_.deliver_in_app(tenant, delivery_id);
    return boost::json::object{{"delivery_id", delivery_id}, {"status", "sent"}, {"changed", changed}};
}

}  // namespace riveredge::messages
