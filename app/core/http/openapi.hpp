#pragma once

#include "core/http/router.hpp"

namespace riveredge::core {

/// An OpenAPI 3 document listing every route of `router` (paths, methods, parameters, security,
/// the error schema).
boost::json::object openapi_document(const Router& router);

}  // namespace riveredge::core
