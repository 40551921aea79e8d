#include "core/http/version_routes.hpp"

#include <algorithm>

namespace riveredge::core {

void add_version_routes(Router& router, VersionRoutes routes) {
    auto shared = std::make_shared<const VersionRoutes>(std::move(routes));
    router
        .get(shared->item_pattern + "/versions", shared->access,
             "The versions of a " + shared->noun + ", newest first")
        .returns(
            R"({"type":"object","properties":{"versions":{"type":"array","items":{"type":"object"}}}})")
        .to([shared](Call& call) {
            const auto id = call.id();
            shared->require_item(call.tenant(), id);  // 404 for a missing or another tenant's
            return boost::json::object{{"versions", shared->versions(call.tenant(), id)}};
        });
    router
        .get(shared->item_pattern + "/versions/{version}", shared->access,
             "One immutable version of a " + shared->noun)
        .returns(shared->version_schema)
        .to([shared](Call& call) -> boost::json::value {
            const auto id = call.id();
            const auto number = call.id("version");
            auto found = shared->version(call.tenant(), id,
                                         static_cast<int>(std::min<std::int64_t>(number, 1 << 30)));
            if (!found) {
                throw DomainError::not_found("version " + std::to_string(number) + " of " +
                                             shared->noun + " " + std::to_string(id));
            }
            return std::move(*found);
        });
}

}  // namespace riveredge::core
