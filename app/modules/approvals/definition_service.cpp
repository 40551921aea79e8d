#include "modules/approvals/definition_service.hpp"

#include "core/errors.hpp"
#include "core/json/fields.hpp"
#include "modules/approvals/decision_table.hpp"
#include "modules/approvals/definition.hpp"

#include <boost/json/serialize.hpp>
#include <openssl/evp.h>

#include <array>

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

std::string sha256_hex(const std::string& text) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out += kHex[digest[i] >> 4U];
        out += kHex[digest[i] & 15U];
    }
    return out;
}

std::string required(const json::object& request,
                     const char* field,
                     const std::string& fallback,
                     std::size_t max) {
    const auto* v = request.if_contains(field);
    if (v == nullptr || v->is_null()) {
        if (fallback.empty()) {
            throw DomainError::validation(json::object{{field, "required"}});
        }
        return fallback.substr(0, max);
    }
    if (!v->is_string() || v->as_string().empty() || v->as_string().size() > max) {
        throw DomainError::validation(
            json::object{{field, "a string of 1 to " + std::to_string(max) + " characters"}});
    }
    return std::string(v->as_string());
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
    const std::string key = required(request, "key", imported.definition.key, 100);
    const std::string name = required(
        request, "name", imported.definition.name.empty() ? key : imported.definition.name, 200);
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
    const auto current = repository_.find(author.tenant, id);
    if (!current) {
        throw DomainError::not_found("process definition " + std::to_string(id));
    }
    const auto imported = import_from(request);
    const std::string name = required(request, "name", current->name, 200);
    repository_.update_draft(author.tenant, id, name, imported.format, request.at("source"));
    return get(author.tenant, id);
}

boost::json::object DefinitionService::get(const core::TenantId& tenant, std::int64_t id) {
    const auto found = repository_.find(tenant, id);
    if (!found) {
        throw DomainError::not_found("process definition " + std::to_string(id));
    }
    auto problems = problems_json(import_definition(found->draft, found->format));
    auto out = found->to_json();
    out["valid"] = problems.empty();
    out["problems"] = std::move(problems);
    return out;
}

boost::json::object DefinitionService::publish(const core::Principal& who, std::int64_t id) {
    const auto found = repository_.find(who.tenant, id);
    if (!found) {
        throw DomainError::not_found("process definition " + std::to_string(id));
    }
    const auto definition = import_definition(found->draft, found->format);
    auto problems = problems_json(definition);
    if (!problems.empty()) {
        throw DomainError(DomainError::Kind::kInvalid, "invalid_definition",
                          "the definition has problems; nothing published",
                          json::object{{"problems", std::move(problems)}});
    }
    const auto compiled = definition.to_json();
    const int version = repository_.publish(who.tenant, id, compiled, found->draft,
                                            sha256_hex(json::serialize(compiled)), who.user_id);
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
        json::array list;
        for (const auto& problem : found) {
            list.emplace_back(problem);
        }
        problems["source"] = std::move(list);
    }
    if (!problems.empty()) {
        throw DomainError::validation(std::move(problems));
    }
    const auto name = core::string_field(request, "name");
    return repository_.save_decision(author.tenant, key, name.empty() ? key : name,
                                     source->as_object(), author.user_id);
}

DecisionRow DefinitionService::decision(const core::TenantId& tenant,
                                        const std::string& key,
                                        std::optional<int> version) {
    auto found = repository_.decision(tenant, key, version);
    if (!found) {
        throw DomainError::not_found("decision table " + key);
    }
    return std::move(*found);
}

boost::json::object DefinitionService::try_decision(const core::TenantId& tenant,
                                                    const std::string& key,
                                                    const boost::json::object& request) {
    std::optional<int> version;
    if (const auto* v = request.if_contains("version"); v != nullptr && !v->is_null()) {
        if (!v->is_int64() || v->as_int64() < 1) {
            throw DomainError::validation(json::object{{"version", "a version number"}});
        }
        version = static_cast<int>(v->as_int64());
    }
    json::object variables;
    if (const auto* v = request.if_contains("variables"); v != nullptr && !v->is_null()) {
        if (!v->is_object()) {
            throw DomainError::validation(json::object{{"variables", "an object"}});
        }
        variables = v->as_object();
    }
    const auto table = decision(tenant, key, version);
    try {
        return json::object{{"key", table.key},
                            {"version", table.version},
                            {"result", evaluate_decision(table.source, variables)}};
    } catch (const std::runtime_error& error) {
        throw DomainError::validation(json::object{{"variables", error.what()}});
    }
}

}  // namespace riveredge::approvals
