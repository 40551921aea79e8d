#pragma once

// Business rules of approval definitions: import (ProFlow or the seed format), validation that
// names nodes and edges, drafts kept verbatim for the designer, immutable published versions.

#include "core/auth/principal.hpp"
#include "modules/approvals/definition_repository.hpp"

#include <boost/json/object.hpp>

namespace riveredge::approvals {

class DefinitionService {
public:
    explicit DefinitionService(DefinitionRepository& repository) : repository_(repository) {}

    /// {valid, problems: [{node, edge, message}], definition} for a source not saved yet.
    boost::json::object validate(const boost::json::object& request) const;
    /// Saves a draft (it may still have problems: they are reported, not refused).
    boost::json::object create(const core::Principal& author, const boost::json::object& request);
    boost::json::object update(const core::Principal& author,
                               std::int64_t id,
                               const boost::json::object& request);
    /// The draft, its problems and its latest version number.
    boost::json::object get(const core::TenantId& tenant, std::int64_t id);
    /// Validates the draft and stores it as the next immutable version; 422 with the problems.
    boost::json::object publish(const core::Principal& who, std::int64_t id);

    /// Saves a decision table {key, name, source} as the key's next version; 422 naming each
    /// problem of the source.
    DecisionRow save_decision(const core::Principal& author, const boost::json::object& request);
    /// A version of a decision table (the latest without one); 404 when there is none.
    DecisionRow decision(const core::TenantId& tenant,
                         const std::string& key,
                         std::optional<int> version);
    /// Tries a stored table on {variables, version?}: {key, version, result}; 422 when it
    /// cannot decide (two rules of a unique table match, an input fails).
    boost::json::object try_decision(const core::TenantId& tenant,
                                     const std::string& key,
                                     const boost::json::object& request);

    DefinitionRepository& repository() noexcept { return repository_; }

private:
    DefinitionRepository& repository_;
};

}  // namespace riveredge::approvals
