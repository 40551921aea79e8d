#pragma once

// What the two approval-definition importer targets check on an imported definition: it
// validates without throwing, survives its stored form (to_json, from_json), and every
// duration the engine may read from it converts as valid_iso_duration promised.

#include "fuzz_target.hpp"
#include "modules/approvals/definition.hpp"

#include <boost/json/parse.hpp>

#include <optional>
#include <string>

namespace inngest::fuzz {

/// The input as JSON, or nullopt for bytes that are not JSON (not a definition's concern).
inline std::optional<boost::json::value> parse_json(const std::uint8_t* data, std::size_t size) {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(as_text(data, size), ec);
    if (ec) {
        return std::nullopt;
    }
    return value;
}

/// Imports `source` as `format`; nullopt when the importer refuses it with ImportError.
inline std::optional<riveredge::approvals::ProcessDefinition> import_as(
    const boost::json::value& source, const std::string& format) {
    try {
        return riveredge::approvals::import_definition(source, format);
    } catch (const riveredge::approvals::ImportError& error) {
        FUZZ_CHECK(!error.message.empty());
        return std::nullopt;
    }
}

// Durations sit in a node's config and one object below it (deadline.duration, retry policies).
inline void check_durations(const boost::json::object& config, int depth) {
    for (const auto& entry : config) {
        if (const auto* text = entry.value().if_string()) {
            const std::string duration(*text);
            const bool valid = riveredge::approvals::valid_iso_duration(duration);
            const auto length = riveredge::approvals::iso_duration(duration);
            FUZZ_CHECK(valid == length.has_value());
            FUZZ_CHECK(!length || length->count() >= 0);
        } else if (const auto* inner = entry.value().if_object(); inner != nullptr && depth < 1) {
            check_durations(*inner, depth + 1);
        }
    }
}

inline void check_definition(const riveredge::approvals::ProcessDefinition& definition) {
    const auto problems = riveredge::approvals::validate(definition);
    for (const auto& problem : problems) {
        FUZZ_CHECK(!problem.message.empty());
        FUZZ_CHECK(!(problem.node && problem.edge));
    }
    const boost::json::object stored = definition.to_json();
    const auto loaded = riveredge::approvals::ProcessDefinition::from_json(stored);
    FUZZ_CHECK(loaded.to_json() == stored);
    FUZZ_CHECK(riveredge::approvals::validate(loaded).size() == problems.size());
    for (const auto& node : definition.nodes) {
        check_durations(node.config, 0);
        if (const auto join = riveredge::approvals::matching_join(definition, node.id)) {
            FUZZ_CHECK(definition.node(*join) != nullptr);
        }
    }
    for (const auto& edge : definition.edges) {
        if (edge.condition) {
            riveredge::approvals::unwrap_expression(*edge.condition);
        }
    }
}

}  // namespace inngest::fuzz
