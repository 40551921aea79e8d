// send-event: sends one event and prints the ids the event API assigned.
//   send-event <name> [json-data]     (INNGEST_EVENT_KEY, INNGEST_DEV or INNGEST_BASE_URL apply)

#include <inngest/client.hpp>

#include <boost/json/parse.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: send-event <name> [json-data]\n";
        return 2;
    }
    try {
        inngest::Client client({.app_id = "send-event"});
        inngest::Event event{.name = argv[1]};
        if (argc > 2) {
            event.data = boost::json::parse(argv[2]).as_object();
        }
        const auto sent = client.send(event);
        if (!sent) {
            std::cerr << "send-event: " << sent.error().message << "\n";
            return 1;
        }
        for (const auto& id : sent->ids) {
            std::cout << id << "\n";
        }
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "send-event: " << error.what() << "\n";
        return 1;
    }
}
