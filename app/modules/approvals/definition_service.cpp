#include "modules/approvals/definition_service.hpp"

#include "core/errors.hpp"
#include "core/found.hpp"
#include "core/json/canonical.hpp"
#include "core/json/fields.hpp"
#include "core/json/request_fields.hpp"
#include "modules/approvals/decision_table.hpp"
#include "modules/approvals/definition.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

namespace riveredge::approvals {
namespace {

namespace json = boost::json;
using core::DomainError;

struct Imported {
    std::string format;
    ProcessDefinition definition;
};

// The source and its format from a request {format?, source}; 422 when it is not a definition.
Imported import_from(const json::object& request) {
    const auto* source = request.if_contains("source");
    if (source == nullptr || !source->is_object()) {
        throw DomainError::validation(json::object{{"source", "required: the definition JSON"}});
    }
    std::string format = "auto";
    if (const auto* f = request.if_contains("format"); f != nullptr && !f->is_null()) {
        if (!f->is_string() || (*f != "proflow" && *f != "seed" && *f != "auto")) {
            throw DomainError::validation(json::object{{"format", "proflow, seed or auto"}});
        }
        format = f->as_string();
    }
    if (format == "auto") {
        format = source->as_object().contains("elements") ? "seed" : "proflow";
    }
    try {
        return Imported{format, import_definition(*source, format)};
    } catch (const ImportError& error) {
        throw DomainError::validation(json::object{{"source", error.message}});
    }
}

json::array problems_json(const ProcessDefinition& definition) {
    json::array out;
    for (const auto& problem : validate(definition)) {
        out.push_back(problem.to_json());
    }
    return out;
}

// A stored draft's problems. A draft saved before a limit it breaks existed cannot be imported
// any more: that is its one problem.
json::array draft_problems(const json::value& draft, const std::string& format) {
    try {
        return problems_json(import_definition(draft, format));
    } catch (const ImportError& error) {
        return json::array{DefinitionProblem{std::nullopt, std::nullopt, error.message}.to_json()};
    }
}

// The request's text, or `fallback` cut to `max` where it is absent: required without one.
std::string text_or(const json::object& request,
                    std::string_view field,
                    const std::string& fallback,
                    std::size_t max,
                    json::object& problems) {
    return core::text_field(request, field, {.max = max, .min = 1, .required = fallback.empty()},
                            problems)
        .value_or(fallback.substr(0, max));
}

}  // namespace

boost::json::object DefinitionService::validate(const boost::json::object& request) const {
    const auto imported = import_from(request);
    auto problems = problems_json(imported.definition);
    return json::object{{"valid", problems.empty()},
                        {"format", imported.format},
                        {"problems", std::move(problems)},
                        {"definition", imported.definition.to_json()}};
}

boost::json::object DefinitionService::create(const core::Principal& author,
                                              const boost::json::object& request) {
    const auto imported = import_from(request);
    json::object problems;
    const std::string key = text_or(request, "key", imported.definition.key, 100, problems);
    const std::string name =
        text_or(request, "name", imported.definition.name.empty() ? key : imported.definition.name,
                200, problems);
    core::refuse_if_any(problems);
    const auto id = repository_.create(
        author.tenant, NewDefinition{key, name, imported.format, request.at("source")},
        author.user_id);
    if (!id) {
        throw DomainError::conflict("a process definition with key '" + key + "' exists already");
    }
    return get(author.tenant, *id);
}

boost::json::object DefinitionService::update(const core::Principal& author,
                                              std::int64_t id,
                                              const boost::json::object& request) {
    const auto current = core::found(repository_.find(author.tenant, id),
                                     "process definition " + std::to_string(id));
    const auto imported = import_from(request);
    json::object problems;
    const std::string name = text_or(request, "name", current.name, 200, problems);
    core::refuse_if_any(problems);
    repository_.update_draft(author.tenant, id, name, imported.format, request.at("source"));
    return get(author.tenant, id);
}

boost::json::object DefinitionService::get(const core::TenantId& tenant, std::int64_t id) {
    const auto found =
        core::found(repository_.find(tenant, id), "process definition " + std::to_string(id));
    auto problems = draft_problems(found.draft, found.format);
    auto out = found.to_json();
    out["valid"] = problems.empty();
    out["problems"] = std::move(problems);
    return out;
}

boost::json::object DefinitionService::publish(const core::Principal& who, std::int64_t id) {
    const auto found =
        core::found(repository_.find(who.tenant, id), "process definition " + std::to_string(id));
    auto problems = draft_problems(found.draft, found.format);
    if (!problems.empty()) {
        throw DomainError(DomainError::Kind::kInvalid, "invalid_definition",
                          "the definition has problems; nothing published",
                          json::object{{"problems", std::move(problems)}});
    }
    const auto compiled = import_definition(found.draft, found.format).to_json();
    const int version =
        repository_.publish(who.tenant, id, compiled, found.draft,
                            core::sha256_hex(json::serialize(compiled)), who.user_id);
    return repository_.version(who.tenant, id, version)->to_json();
}

DecisionRow DefinitionService::save_decision(const core::Principal& author,
                                             const boost::json::object& request) {
    json::object problems;
    const auto key = core::string_field(request, "key");
    if (key.empty() || key.size() > 100) {
        problems["key"] = "required: the table's key, 1 to 100 bytes";
    }
    const auto* source = request.if_contains("source");
    if (source == nullptr || !source->is_object()) {
        problems["source"] = "required: {hit_policy, inputs, outputs, rules}";
    } else if (const auto found = check_decision_table(source->as_object()); !found.empty()) {
        problems["source"] = json::value_from(found);
    }
    core::refuse_if_any(problems);
    const auto name = core::string_field(request, "name");
    return repository_.save_decision(author.tenant, key, name.empty() ? key : name,
                                     source->as_object(), author.user_id);
}

DecisionRow DefinitionService::decision(const core::TenantId& tenant,
                                        const std::string& key,
                                        std::optional<int> version) {
    return core::found(repository_.decision(tenant, key, version), "decision table " + key);
}

boost::json::object DefinitionService::try_decision(const core::TenantId& tenant,
                                                    const std::string& key,
                                                    const boost::json::object& request) {
    json::object problems;
    const auto version = core::int_field(request, "version", 1, 1 << 30, problems);
    const auto variables =
        core::object_field(request, "variables", problems).value_or(json::object{});
    core::refuse_if_any(problems);
    const auto table = decision(tenant, key, version ? std::optional<int>(*version) : std::nullopt);
    try {
        return json::object{{"key", table.key},
                            {"version", table.version},
                            {"result", evaluate_decision(table.source, variables)}};
    } catch (const std::runtime_error& error) {
        throw DomainError::validation(json::object{{"variables", error.what()}});
    }
}

}  // namespace riveredge::approvals
