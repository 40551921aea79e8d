#pragma once

// What every module receives: settings, the database pool, the Inngest client, the router, the
// WebSocket hub and the capabilities other modules offer.

#include "core/config/settings.hpp"
#include "core/db/database.hpp"
#include "core/http/outbound_policy.hpp"
#include "core/http/router.hpp"
#include "core/http/websocket_hub.hpp"
#include "core/module.hpp"

#include <chrono>
#include <functional>

namespace inngest {
class Client;
class Metrics;
}  // namespace inngest

namespace riveredge::core {

struct AppContext {
    const Settings& settings;
    db::Pool& db;
    inngest::Client& inngest;
    Router& router;
    WebSocketHub& hub;
    /// What modules offer each other (a module listed earlier provides, later ones use).
    Capabilities& capabilities;
    /// The app's clock (the embedded executor's): modules that schedule read time here.
    std::function<std::chrono::system_clock::time_point()> now;
    /// Where the calls tenants configure may go (the deployment's policy, the app's own
    /// endpoints reserved).
    const OutboundPolicy& outbound;
    /// The app's metrics (`/metrics`): modules count their outcomes here.
    inngest::Metrics& metrics;
};

}  // namespace riveredge::core
