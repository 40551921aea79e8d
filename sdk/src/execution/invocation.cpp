#include "execution/invocation.hpp"

#include "crypto/crypto.hpp"
#include "protocol/json_scan.hpp"
#include "protocol/json_writer.hpp"

#include <inngest/client.hpp>
#include <inngest/context.hpp>
#include <inngest/errors.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <stdexcept>
#include <utility>

namespace inngest::detail {

static_assert(kMaxStepResultDepth == kMaxStepValueDepth,
              "the public limit is the one the SDK reads state with room for");

namespace {

constexpr std::string_view kDiscovery = "step";

boost::json::object error_object(std::string_view name, std::string_view message) {
    return boost::json::object{{"name", name}, {"message", message}};
}

std::string error_body(std::string_view name, std::string_view message) {
    return detail::to_json(error_object(name, message));
}

StepError step_error_from(std::string_view step_id, const boost::json::value& error) {
    std::string name = "Error";
    std::string message;
    std::string stack;
    boost::json::value data;
    if (const auto* object = error.if_object()) {
        if (const auto* v = object->if_contains("name"); v != nullptr && v->is_string()) {
            name = v->get_string();
        }
        if (const auto* v = object->if_contains("message"); v != nullptr && v->is_string()) {
            message = v->get_string();
        }
        if (const auto* v = object->if_contains("stack"); v != nullptr && v->is_string()) {
            stack = v->get_string();
        }
        if (const auto* v = object->if_contains("data")) {
            data = *v;
        }
    } else if (error.is_string()) {
        message = error.get_string();
    }
    return StepError(std::string(step_id), std::move(name), message, std::move(stack),
                     std::move(data));
}

thread_local std::size_t memo_reads = 0;

boost::json::value parse_memo(std::string_view memo) {
    ++memo_reads;
    boost::system::error_code ec;
    boost::json::value value = parse_json(memo, ec);
    if (ec) {
        // The scanner validated the slice: not reached.
        throw std::runtime_error("memoized step state is not valid JSON: " + ec.message());
    }
    return value;
}

const char* async_op_name(AsyncOp op) noexcept {
    switch (op) {
        case AsyncOp::kSleep:
            return "Sleep";
        case AsyncOp::kWaitForEvent:
            return "WaitForEvent";
        case AsyncOp::kInvokeFunction:
            return "InvokeFunction";
    }
    return "Sleep";
}

}  // namespace

Invocation::Invocation(const CallRequest& request,
                       std::string_view target,
                       int max_attempts,
                       const Client* client)
    : request_(request),
      target_(target == kDiscovery ? std::string_view{} : target),
      max_attempts_(max_attempts),
      client_(client),
      memo_size_(request.steps.size()) {}

Invocation::Reached Invocation::reach(std::string_view id) {
    if (in_step_body_) {
        throw std::logic_error("step '" + std::string(id) +
                               "' was called inside the body of another step; steps cannot "
                               "be nested");
    }
    if (sealed_) {
        interrupt();
    }
    std::string key(id);
    int& seen = repeats_[key];
    const int index = seen;
    if (parallel_depth_ > 0) {
        reached_in_parallel_.push_back(key);
    }
    if (seen > 0) {
        key += ':';
        key += std::to_string(seen);
    }
    ++seen;
    Reached reached{crypto::sha1_hex(key), nullptr, index};
    if (const StepMemo* memo = request_.steps.find(reached.hashed_id);
        memo != nullptr && memo->shape != StepMemo::Shape::kInput) {
        reached.memo = memo;
        ++memo_hits_;
    }
    return reached;
}

void Invocation::interrupt() {
    ++unhandled_interrupts_;
    throw Interrupt{};
}

Op Invocation::new_op(const char* op, Reached& reached, std::string_view id, RunKind kind) const {
    Op out{op,
           std::move(reached.hashed_id),
           std::string(id),
           {},
           nullptr,
           {},
           std::string(id),
           reached.index,
           std::nullopt};
    if (kind == RunKind::kSendEvent) {
        out.name = "sendEvent";
        out.opts = boost::json::object{{"type", "step.sendEvent"}};
    }
    return out;
}

RunSlot Invocation::open_run(std::string_view id, RunKind kind) {
    Reached reached = reach(id);
    if (reached.memo != nullptr) {
        // Not parsed here: the step's result is parsed only if the function reads it.
        switch (reached.memo->shape) {
            case StepMemo::Shape::kData:
                return RunSlot{reached.memo->inner};
            case StepMemo::Shape::kError:
                throw step_error_from(id, parse_memo(reached.memo->inner));
            default:
                return RunSlot{reached.memo->raw};
        }
    }
    reached_new_.push_back(reached.hashed_id);
    if (!target_.empty()) {
        // Targeted call (protocol §10.5): run only the named step, report nothing else.
        if (reached.hashed_id != target_) {
            interrupt();
        }
        ops_.push_back(new_op("StepRun", reached, id, kind));
        body_started_ = std::chrono::system_clock::now();
        body_started_steady_ = std::chrono::steady_clock::now();
        return RunSlot{};
    }
    // Discovery (protocol §10.4): run a lone step now unless parallelism forbids it.
    const bool run_now = std::exchange(run_lone_step_, false);
    if ((parallel_depth_ > 0 && !run_now) || request_.disable_immediate_execution ||
        !ops_.empty()) {
        ops_.push_back(new_op("StepPlanned", reached, id, kind));
        if (parallel_depth_ == 0) {
            sealed_ = true;
        }
        interrupt();
    }
    ops_.push_back(new_op("StepRun", reached, id, kind));
    body_started_ = std::chrono::system_clock::now();
    body_started_steady_ = std::chrono::steady_clock::now();
    return RunSlot{};
}

// The body's start and duration in nanoseconds, as the official SDKs report them.
void Invocation::time_body(Op& op) const {
    const auto since_epoch =
        std::chrono::duration_cast<std::chrono::nanoseconds>(body_started_.time_since_epoch());
    const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - body_started_steady_);
    op.timing = std::pair{static_cast<std::int64_t>(since_epoch.count()),
                          static_cast<std::int64_t>(took.count())};
}

void Invocation::complete_run(boost::json::value data) {
    // The step being executed is always the last op reached.
    Op& op = ops_.back();
    if (json_depth(data, kMaxStepResultDepth) > kMaxStepResultDepth) {
        // Memoized, it could not be read back on the replay: the run would fail for ever there.
        fail_run(std::make_exception_ptr(
            NonRetriableError("step '" + op.user_id + "' returned a value nested deeper than " +
                              std::to_string(kMaxStepResultDepth) +
                              " arrays and objects, which could not be replayed")));
    }
    op.data = std::move(data);
    time_body(op);
    target_ran_ = true;
    sealed_ = true;
    interrupt();
}

void Invocation::fail_run(std::exception_ptr error) {
    Op& op = ops_.back();
    std::string name = "Error";
    std::string message = "unknown exception";
    bool retriable = true;
    try {
        std::rethrow_exception(error);
    } catch (const NonRetriableError& e) {
        name = "NonRetriableError";
        message = e.what();
        retriable = false;
    } catch (const RetryAfterError& e) {
        name = "RetryAfterError";
        message = e.what();
        retry_after_ = e.header_value();
    } catch (const StepError& e) {
        name = e.name();
        message = e.what();
    } catch (const std::exception& e) {
        message = e.what();
    } catch (const Interrupt&) {
        interrupt_handled();
        message = "a step ended the invocation from inside another step's body";
    } catch (...) {
        message = "step threw a non-standard exception";
    }
    const bool final_attempt = request_.attempt + 1 >= max_attempts_;
    if (!retriable || final_attempt) {
        op.op = "StepFailed";
        no_retry_ = true;
        retry_after_.reset();
    } else {
        op.op = "StepError";
        no_retry_ = false;
    }
    op.data = nullptr;
    op.error = error_object(name, message);
    time_body(op);
    target_ran_ = true;
    sealed_ = true;
    interrupt();
}

const boost::json::value& Invocation::open_async(std::string_view id,
                                                 AsyncOp op,
                                                 boost::json::object opts) {
    Reached reached = reach(id);
    if (reached.memo != nullptr) {
        return async_memos_.emplace_back(parse_memo(reached.memo->raw));
    }
    reached_new_.push_back(reached.hashed_id);
    if (!target_.empty()) {
        interrupt();
    }
    Op planned = new_op(async_op_name(op), reached, id, RunKind::kRun);
    planned.opts = std::move(opts);
    ops_.push_back(std::move(planned));
    if (parallel_depth_ == 0) {
        sealed_ = true;
    }
    interrupt();
}

void Invocation::enter_step_body() {
    if (in_step_body_) {
        throw std::logic_error("steps cannot be nested");
    }
    in_step_body_ = true;
}

void Invocation::interrupt_from_parallel() {
    if (parallel_depth_ <= 1) {
        sealed_ = true;
    }
    interrupt();
}

Result<SendEventResult> Invocation::send_events(const std::vector<Event>& events) const {
    if (event_sink_ != nullptr) {
        return (*event_sink_)(events);
    }
    if (client_ == nullptr) {
        throw std::logic_error("send_event needs a client");
    }
    return client_->send(events);
}

BranchMark Invocation::mark_branch() const noexcept {
    return BranchMark{reached_in_parallel_.size(), memo_hits_, reached_new_.size(), ops_.size()};
}

bool Invocation::rewind_for_lone_step(const BranchMark& mark) {
    const bool lone = parallel_depth_ == 1 && target_.empty() &&
                      !request_.disable_immediate_execution && mark.ops == 0 && ops_.size() == 1 &&
                      ops_.front().op == "StepPlanned";
    if (!lone) {
        return false;
    }
    for (std::size_t i = mark.reached; i < reached_in_parallel_.size(); ++i) {
        --repeats_[reached_in_parallel_[i]];
    }
    reached_in_parallel_.resize(mark.reached);
    memo_hits_ = mark.memo_hits;
    reached_new_.resize(mark.new_steps);
    ops_.clear();
    run_lone_step_ = true;
    return true;
}

Outcome Invocation::step_not_found() const {
    boost::json::array found;
    for (const auto& id : reached_new_) {
        found.emplace_back(id);
    }
    boost::json::object body{
        {"name", "StepNotFoundError"},
        {"message", "Could not find step " + target_ +
                        " to run; the function's code may have changed since the run started"},
        {"error", "Could not find step " + target_},
        {"requestedStep", target_},
        {"foundSteps", std::move(found)},
    };
    return Outcome{500, detail::to_json(body), false, std::nullopt};
}

Outcome Invocation::run(const Function& function, Context& context) {
    const auto swallowed = [] {
        return Outcome{400,
                       error_body("InterruptSwallowedError",
                                  "the function caught and swallowed the SDK's step interruption "
                                  "(catch (...) without rethrow around a step); rethrow it"),
                       true, std::nullopt};
    };
    try {
        boost::json::value result = function.handler()(context);
        if (unhandled_interrupts_ > 0) {
            return swallowed();
        }
        if (!target_.empty()) {
            return step_not_found();
        }
        if (json_depth(result, kMaxStepResultDepth) > kMaxStepResultDepth) {
            // An invoking run's step state holds it: as a step's, it must be readable again.
            return Outcome{400,
                           error_body("NonRetriableError",
                                      "the function returned a value nested deeper than " +
                                          std::to_string(kMaxStepResultDepth) +
                                          " arrays and objects, which could not be replayed"),
                           true, std::nullopt};
        }
        return Outcome{200, detail::to_json(result), std::nullopt, std::nullopt};
    } catch (const Interrupt&) {
        if (!target_.empty() && !target_ran_) {
            return step_not_found();
        }
        if (ops_.empty()) {
            return Outcome{500, error_body("Error", "invocation ended without reporting a step"),
                           false, std::nullopt};
        }
        return Outcome{206, serialize_ops(ops_), no_retry_, retry_after_};
    } catch (const StepError& e) {
        if (unhandled_interrupts_ > 0) {
            return swallowed();
        }
        // A memoized step failure escaped the function: the run fails for good (§10.8).
        return Outcome{400, error_body(e.name(), e.what()), true, std::nullopt};
    } catch (const NonRetriableError& e) {
        if (unhandled_interrupts_ > 0) {
            return swallowed();
        }
        return Outcome{400, error_body("NonRetriableError", e.what()), true, std::nullopt};
    } catch (const RetryAfterError& e) {
        if (unhandled_interrupts_ > 0) {
            return swallowed();
        }
        return Outcome{500, error_body("RetryAfterError", e.what()), false, e.header_value()};
    } catch (const std::exception& e) {
        if (unhandled_interrupts_ > 0) {
            return swallowed();
        }
        return Outcome{500, error_body("Error", e.what()), false, std::nullopt};
    } catch (...) {
        if (unhandled_interrupts_ > 0) {
            return swallowed();
        }
        return Outcome{500, error_body("Error", "function threw a non-standard exception"), false,
                       std::nullopt};
    }
}

std::string serialize_ops(const std::vector<Op>& ops) {
    boost::json::array array;
    array.reserve(ops.size());
    for (const auto& op : ops) {
        boost::json::object object;
        object.reserve(9);
        object["op"] = op.op;
        object["id"] = op.id;
        object["name"] = op.name;
        object["displayName"] = op.user_id;
        if (op.opts) {
            object["opts"] = *op.opts;
        }
        object["data"] = op.data;
        if (op.error) {
            object["error"] = *op.error;
        }
        boost::json::object userland{{"id", op.user_id}};
        if (op.index > 0) {
            userland["index"] = op.index;
        }
        object["userland"] = std::move(userland);
        if (op.timing) {
            object["timing"] = {{"a", op.timing->first}, {"b", op.timing->second}};
        }
        array.emplace_back(std::move(object));
    }
    return detail::to_json(array);
}

Outcome execute_call(const Function& function,
                     const CallRequest& request,
                     std::string_view target_step,
                     const Client& client,
                     const EventSink* sink) {
    const int max_attempts =
        request.max_attempts > 0 ? static_cast<int>(request.max_attempts) : function.max_attempts();
    Invocation invocation(request, target_step, max_attempts, &client);
    invocation.set_event_sink(sink);
    Step step(invocation);
    StepLogger logger(client.log_sink(), invocation);
    RunInfo run{request.run_id, function.slug(), static_cast<int>(request.attempt), max_attempts};
    Context context(request.event, request.events, run, step, logger);
    return invocation.run(function, context);
}

std::size_t memo_reads_on_this_thread() noexcept {
    return memo_reads;
}

// Entry points used by Step's templates.

boost::json::value read_memo(std::string_view memo) {
    return parse_memo(memo);
}

std::string read_memo_string(std::string_view memo) {
    if (memo.front() != '"') {
        return boost::json::value_to<std::string>(parse_memo(memo));
    }
    ++memo_reads;
    std::string out;
    decode_json_string(memo, out);
    return out;
}

RunSlot open_run(Invocation& invocation, std::string_view id, RunKind kind) {
    return invocation.open_run(id, kind);
}

void complete_run(Invocation& invocation, boost::json::value data) {
    invocation.complete_run(std::move(data));
}

void fail_run(Invocation& invocation, std::exception_ptr error) {
    invocation.fail_run(std::move(error));
}

const boost::json::value& open_async(Invocation& invocation,
                                     std::string_view id,
                                     AsyncOp op,
                                     boost::json::object opts) {
    return invocation.open_async(id, op, std::move(opts));
}

StepBodyScope::StepBodyScope(Invocation& invocation) : invocation_(invocation) {
    invocation_.enter_step_body();
}

StepBodyScope::~StepBodyScope() {
    invocation_.leave_step_body();
}

ParallelScope::ParallelScope(Invocation& invocation) : invocation_(invocation) {
    invocation_.enter_parallel();
}

ParallelScope::~ParallelScope() {
    if (!finished_) {
        invocation_.leave_parallel();
    }
}

bool ParallelScope::sealed() const noexcept {
    return invocation_.sealed();
}

void ParallelScope::begin_branch(std::size_t index) noexcept {
    current_ = index;
    current_mark_ = invocation_.mark_branch();
}

void ParallelScope::branch_pending() noexcept {
    invocation_.interrupt_handled();
    if (++pending_ == 1) {
        pending_branch_ = current_;
        pending_mark_ = current_mark_;
    }
}

std::optional<std::size_t> ParallelScope::lone_step_branch() {
    if (pending_ != 1 || !invocation_.rewind_for_lone_step(pending_mark_)) {
        return std::nullopt;
    }
    pending_ = 0;
    current_ = pending_branch_;
    current_mark_ = pending_mark_;
    return pending_branch_;
}

void ParallelScope::finish() {
    const bool pending = pending_ > 0;
    if (pending) {
        // Seal (if outermost) before leaving, so the depth check sees this scope.
        try {
            invocation_.interrupt_from_parallel();
        } catch (...) {
            finished_ = true;
            invocation_.leave_parallel();
            throw;
        }
    }
    finished_ = true;
    invocation_.leave_parallel();
}

}  // namespace inngest::detail
