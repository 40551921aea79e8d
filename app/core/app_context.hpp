#pragma once

// What every module receives: settings, the database pool, the Inngest client and the router.

#include "core/config/settings.hpp"
#include "core/db/database.hpp"
#include "core/http/router.hpp"
#include "core/http/websocket_hub.hpp"

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
};

}  // namespace riveredge::core
