#pragma once

// What every module receives: settings, the database pool, the Inngest client and the router.

#include "core/config/settings.hpp"
#include "core/db/database.hpp"
#include "core/http/router.hpp"
#include "core/http/websocket_hub.hpp"

#include <chrono>
#include <functional>

namespace inngest {
class Client;
}

namespace riveredge::core {

struct AppContext {
    const Settings& settings;
    db::Pool& db;
    inngest::Client& inngest;
    Router& router;
    WebSocketHub& hub;
    /// The app's clock (the embedded executor's): modules that schedule read time here.
    std::function<std::chrono::system_clock::time_point()> now;
};

}  // namespace riveredge::core
