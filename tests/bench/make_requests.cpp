// inngest-bench-requests OUTDIR: writes the benchmark's call bodies, the same bytes for both
// SDKs (the executor's canonical form: sorted keys, steps keyed by hashed id).

#include "support/call_builder.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const std::string& body) {
    std::ofstream out(dir / (name + ".json"), std::ios::binary);
    out << body;
}

// "s" + std::to_string(i) trips GCC 12's -Wrestrict false positive at -O3 (GCC bug 105329).
std::string numbered(const char* prefix, int i) {
    std::string id(prefix);
    id += std::to_string(i);
    return id;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: inngest-bench-requests OUTDIR\n";
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);

    const auto steps = [](int memoized) {
        inngest_test::CallBuilder call;
        call.fn_slug = "bench-bench-steps";
        call.event = {{"name", "bench/steps"}, {"data", {{"n", memoized}}}};
        for (int i = 0; i < memoized; ++i) {
            call.data(numbered("s", i), i);
        }
        return call.body();
    };
    write(dir, "first-step", steps(0));
    for (const int n : {10, 100, 1000, 10000}) {
        write(dir, numbered("replay-", n), steps(n));
    }

    inngest_test::CallBuilder parallel;
    parallel.fn_slug = "bench-bench-parallel";
    parallel.event = {{"name", "bench/parallel"}, {"data", boost::json::object{}}};
    write(dir, "parallel-100", parallel.body());

    for (const auto& [name, bytes] : {std::pair{"large-1mib", std::size_t{1} << 20},
                                      std::pair{"large-10mib", std::size_t{10} << 20}}) {
        inngest_test::CallBuilder large;
        large.fn_slug = "bench-bench-large";
        large.event = {{"name", "bench/large"}, {"data", boost::json::object{}}};
        large.data("big", boost::json::string(std::string(bytes, 'x')));
        write(dir, name, large.body());
    }
    std::cout << "call bodies written to " << dir << "\n";
    return 0;
}
