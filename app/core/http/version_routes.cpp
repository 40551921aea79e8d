#include "core/http/version_routes.hpp"

#include <algorithm>

namespace riveredge::core {

void add_version_routes(Router& router, VersionRoutes routes) {
    auto shared = std::make_shared<const VersionRoutes>(std::move(routes));
    router.add(
        RouteSpec{
            .method = "GET",
            .pattern = shared->item_pattern + "/versions",
            .access = shared->access,
            .summary = "The versions of a " + shared->noun + ", newest first",
            .response_schema =
                R"({"type":"object","properties":{"versions":{"type":"array","items":{"type":"object"}}}})"},
        [shared](const inngest::HttpRequest&, RequestContext& context) {
            const auto& tenant = context.who().tenant;
            const auto id = id_param(context, "id");
            shared->require_item(tenant, id);  // 404 for a missing or another tenant's
            return json_response(200,
                                 boost::json::object{{"versions", shared->versions(tenant, id)}});
        });
    router.add(RouteSpec{.method = "GET",
                         .pattern = shared->item_pattern + "/versions/{version}",
                         .access = shared->access,
                         .summary = "One immutable version of a " + shared->noun,
                         .response_schema = shared->version_schema},
               [shared](const inngest::HttpRequest&, RequestContext& context) {
                   const auto id = id_param(context, "id");
                   const auto number = id_param(context, "version");
                   auto found =
                       shared->version(context.who().tenant, id,
                                       static_cast<int>(std::min<std::int64_t>(number, 1 << 30)));
                   if (!found) {
                       throw DomainError::not_found("version " + std::to_string(number) + " of " +
                                                    shared->noun + " " + std::to_string(id));
                   }
                   return json_response(200, *found);
               });
}

}  // namespace riveredge::core
