#pragma once

// Find-or-404: what a lookup found, or the DomainError that says it is not there.

#include "core/errors.hpp"

#include <optional>
#include <string>
#include <utility>

namespace riveredge::core {

/// The value `v` holds; DomainError::not_found(`what`) ("<what> not found", a 404) when it is
/// empty.
template <class T>
T found(std::optional<T> v, const std::string& what) {
    if (!v) {
        throw DomainError::not_found(what);
    }
    return std::move(*v);
}

}  // namespace riveredge::core
