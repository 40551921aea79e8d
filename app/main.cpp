// riveredge-flow: serve (default), migrate, or print a development token.
//   riveredge-flow [serve]
//   riveredge-flow token --tenant T --user U [--roles a,b] [--hours N]

#include "app.hpp"
#include "core/auth/jwt.hpp"
#include "core/log/logger.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <iostream>
#include <sstream>

namespace {

// Minting a token needs only the JWT secret, not the database or the rest of the settings.
int print_token(int argc, char** argv) {
    std::string tenant;
    std::string user;
    std::vector<std::string> roles;
    long hours = 12;
    const char* usage =
        "usage: riveredge-flow token --tenant T --user U [--roles a,b] [--hours N]\n";
    if (argc % 2 != 0) {
        std::cerr << usage;
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const std::string value = argv[i + 1];
        if (flag == "--tenant") {
            tenant = value;
        } else if (flag == "--user") {
            user = value;
        } else if (flag == "--roles") {
            std::stringstream list(value);
            std::string role;
            while (std::getline(list, role, ',')) {
                roles.push_back(role);
            }
        } else if (flag == "--hours") {
            hours = std::stol(value);
        } else {
            std::cerr << usage;
            return 2;
        }
    }
    if (tenant.empty() || user.empty() || hours <= 0) {
        std::cerr << usage;
        return 2;
    }
    if (!riveredge::core::valid_tenant_id(tenant)) {
        std::cerr << "--tenant: 1 to 64 of A-Z, a-z, 0-9, _, . and - (the app refuses any other "
                     "tenant id)\n";
        return 2;
    }
    const std::string secret =
        riveredge::core::load_jwt_secret(riveredge::core::process_environment());
    std::cout << riveredge::core::issue_token(
                     {riveredge::core::TenantId::trusted(tenant), user, roles}, secret,
                     std::chrono::hours(hours))
              << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string command = argc > 1 ? argv[1] : "serve";
        if (command == "token") {
            return print_token(argc, argv);
        }
        const auto settings =
            riveredge::core::load_settings(riveredge::core::process_environment());
        if (settings.log_level == "debug") {
            riveredge::core::set_log_level(riveredge::core::LogLevel::kDebug);
        }
        if (command != "serve") {
            std::cerr
                << "usage: riveredge-flow [serve | token --tenant T --user U [--roles a,b]]\n";
            return 2;
        }
        riveredge::App app(settings);
        app.start();
        std::cout << "riveredge-flow listening on http://" << settings.host << ":" << app.port()
                  << std::endl;
        boost::asio::io_context io;
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([](const boost::system::error_code&, int) {});
        io.run();
        riveredge::core::log(riveredge::core::LogLevel::kInfo, "shutting down");
        app.stop();
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "riveredge-flow: " << error.what() << "\n";
        return 1;
    }
}
