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

    DefinitionRepository& repository() noexcept { return repository_; }

private:
    DefinitionRepository& repository_;
};

}  // namespace riveredge::approvals
