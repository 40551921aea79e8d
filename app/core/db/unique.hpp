#pragma once

// A write that may break a unique key the caller can name: the violation becomes a 409 that
// says which (the router's own answer for SQLSTATE 23505 cannot know).

#include "core/db/database.hpp"
#include "core/errors.hpp"

#include <string>
#include <utility>

namespace riveredge::core::db {

/// Runs `work`; a unique violation it raises becomes DomainError::conflict(`conflict`).
template <class Work>
decltype(auto) unique_or_conflict(const std::string& conflict, Work&& work) {
    try {
        return std::forward<Work>(work)();
    } catch (const DbError& error) {
        if (error.sqlstate() == "23505") {
            throw DomainError::conflict(conflict);
        }
        throw;
    }
}

}  // namespace riveredge::core::db
