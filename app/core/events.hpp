#pragma once

// The event namespaces. The app's own functions trigger only on names under reserved prefixes,
// and only the app sends those (the executor's event API needs the event key). Events a tenant
// defines (schedule actions, later webhooks) travel as `tenants/<tenant>/<name>` with the
// tenant taken from the caller's token, so they can never start one of the app's functions or
// speak for another tenant.

#include "core/auth/principal.hpp"
#include "core/errors.hpp"

#include <inngest/errors.hpp>
#include <inngest/event.hpp>

#include <boost/json/object.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace riveredge::core {

inline constexpr std::array<std::string_view, 10> kReservedEventPrefixes{
    "messages/", "schedules/", "scripts/", "approvals/", "records/",
    "print/",    "workflows/", "inngest/", "riveredge/", "tenants/"};

/// True when `name` lies in the app's own namespace (or Inngest's).
inline bool is_reserved_event_name(std::string_view name) {
    for (const auto prefix : kReservedEventPrefixes) {
        if (name.starts_with(prefix)) {
            return true;
        }
    }
    return false;
}

/// The name a tenant-defined event is sent under.
inline std::string tenant_event_name(const TenantId& tenant, std::string_view name) {
    return "tenants/" + tenant.value() + "/" + std::string(name);
}

/// The tenant of one of the app's own events (`data.tenant_id`). Only the app sends these, so the
/// tenant is the one the app authenticated; a malformed one fails the run without retries, and
/// each function still loads its rows in this tenant only, refusing ids that are not its.
inline TenantId event_tenant(const boost::json::object& data) {
    const auto* value = data.if_contains("tenant_id");
    if (value == nullptr || !value->is_string() || value->get_string().empty() ||
        value->get_string().size() > 200) {
        throw inngest::NonRetriableError("the event carries no valid data.tenant_id");
    }
    return TenantId::trusted(std::string(value->get_string()));
}

/// The event that announces one of a tenant's rows to the app's own function: data
/// `{"tenant_id": <tenant>, <id_field>: <id>}` and the event id `<id_prefix>-<tenant>-<id>`, so
/// that a repeated send (an outbox relay after a crash) starts no second run.
inline inngest::Event row_event(std::string_view name,
                                const TenantId& tenant,
                                std::string_view id_field,
                                std::int64_t id,
                                std::string_view id_prefix) {
    return inngest::Event{
        .name = std::string(name),
        .data = boost::json::object{{"tenant_id", tenant.value()}, {id_field, id}},
        .id = std::string(id_prefix) + "-" + tenant.value() + "-" + std::to_string(id)};
}

/// The integer `data.<field>` of one of the app's own events; a missing or non-integer one fails
/// the run without retries ("<event> needs <field>").
inline std::int64_t event_int(const boost::json::object& data,
                              std::string_view field,
                              std::string_view event) {
    const auto* value = data.if_contains(field);
    if (value == nullptr || !value->is_int64()) {
        throw inngest::NonRetriableError(std::string(event) + " needs " + std::string(field));
    }
    return value->get_int64();
}

/// The `data` of the event whose run failed, read from the `inngest/function.failed` event's data
/// (`event.data`); nullptr when the failure event carries none (or not an object).
inline const boost::json::object* failed_event_data(const boost::json::object& failure) {
    const auto* original = failure.if_contains("event");
    if (original == nullptr || !original->is_object()) {
        return nullptr;
    }
    const auto* data = original->as_object().if_contains("data");
    return data != nullptr && data->is_object() ? &data->as_object() : nullptr;
}

/// The row a failed run was about: the tenant and the integer `data.<id_field>` of the event whose
/// run failed (`failed_event_data`).
struct FailedRow {
    TenantId tenant;
    std::int64_t id = 0;
};

/// The failed run's row, read from the `inngest/function.failed` event's data (`event.data`);
/// nothing when that event carries no data or no integer `id_field`. A malformed tenant fails the
/// failure handler without retries (`event_tenant`).
inline std::optional<FailedRow> failed_event_row(const boost::json::object& failure,
                                                 std::string_view id_field) {
    const auto* data = failed_event_data(failure);
    if (data == nullptr) {
        return std::nullopt;
    }
    const auto* id = data->if_contains(id_field);
    if (id == nullptr || !id->is_int64()) {
        return std::nullopt;
    }
    return FailedRow{event_tenant(*data), id->get_int64()};
}

/// The message of the error a failed run ended with (`error.message` of the
/// `inngest/function.failed` event's data), when it has one.
inline std::optional<std::string> failure_message(const boost::json::object& failure) {
    const auto* error = failure.if_contains("error");
    if (error == nullptr || !error->is_object()) {
        return std::nullopt;
    }
    const auto* message = error->as_object().if_contains("message");
    if (message == nullptr || !message->is_string()) {
        return std::nullopt;
    }
    return std::string(message->as_string());
}

/// What `work` returns; a DomainError of one of `kinds` becomes a NonRetriableError with its
/// message (retrying the step cannot change that answer), any other error passes unchanged.
template <class F>
auto final_on(std::initializer_list<DomainError::Kind> kinds, F&& work) -> decltype(work()) {
    try {
        return work();
    } catch (const DomainError& error) {
        for (const auto kind : kinds) {
            if (error.kind() == kind) {
                throw inngest::NonRetriableError(error.what());
            }
        }
        throw;
    }
}

}  // namespace riveredge::core
