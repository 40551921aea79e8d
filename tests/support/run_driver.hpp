#pragma once

// RunDriver: plays the executor's side of the call loop over real HTTP, far enough to run a
// function to completion in a test (step results, sleeps and waits resolved at once, planned
// steps called one by one, step and function retries). Not the product executor.

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace inngest_test {

struct DrivenRun {
    int final_status = 0;
    boost::json::value output;
    int calls = 0;
    std::vector<std::string> ops;  // every op name reported, in order
};

/// Runs `fn_slug` served at `serve_url` for `event`; `wait_result` is memoized for every
/// WaitForEvent (null: the wait timed out). Stops after `max_calls`.
DrivenRun drive_run(const std::string& serve_url,
                    const std::string& fn_slug,
                    const boost::json::object& event,
                    const boost::json::value& wait_result = nullptr,
                    int max_calls = 50);

}  // namespace inngest_test
