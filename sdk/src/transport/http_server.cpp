#include "transport/connection_group.hpp"

#include <inngest/errors.hpp>
#include <inngest/http_server.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace inngest {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse json_error(int status, std::string_view code, std::string_view message) {
    HttpResponse response;
    response.status = status;
    response.headers = {{"Content-Type", "application/json"}};
    response.body = std::string(R"({"code":")") + std::string(code) + R"(","message":")" +
                    std::string(message) + R"("})";
    return response;
}

}  // namespace

/// A connection with a deadline, closed by the server's sweeper once the deadline has passed.
/// (One coarse timer for the whole server: a timer per read and write cost about 7 % of the
/// throughput of small calls.)
class TimedConnection {
public:
    virtual ~TimedConnection() = default;
    virtual void close_if_expired(std::chrono::steady_clock::time_point now) = 0;
};

/// One body's share of the server's body budget (the bytes of it counted so far), returned when
/// destroyed. Bodies are numbered in the order they started: see HttpServer::Impl::hold_body.
class BodyReservation {
public:
    BodyReservation() = default;
    BodyReservation(HttpServer::Impl* server, std::uint64_t body) noexcept
        : server_(server), body_(body) {}
    BodyReservation(BodyReservation&& other) noexcept
        : server_(std::exchange(other.server_, nullptr)), body_(other.body_) {}
    BodyReservation& operator=(BodyReservation&& other) noexcept {
        if (this != &other) {
            reset();
            server_ = std::exchange(other.server_, nullptr);
            body_ = other.body_;
        }
        return *this;
    }
    BodyReservation(const BodyReservation&) = delete;
    BodyReservation& operator=(const BodyReservation&) = delete;
    ~BodyReservation() { reset(); }

    std::uint64_t body() const noexcept { return body_; }
    void reset() noexcept;
    /// Adds `bytes` (a chunk about to be read) when they fit the budget now; false otherwise.
    bool grow(std::size_t bytes) noexcept;

private:
    HttpServer::Impl* server_ = nullptr;
    std::uint64_t body_ = 0;
};

class HttpServer::Impl {
public:
    Impl(const ServeHandler* handler, HttpServerOptions options)
        : handler_(handler), options_(std::move(options)), acceptor_(io_) {
        general_.slots = options_.worker_threads > 0
                             ? options_.worker_threads
                             : static_cast<int>(std::max(2U, std::thread::hardware_concurrency()));
        isolated_.slots =
            options_.isolated_prefixes.empty() ? 0 : std::max(1, options_.isolated_worker_threads);
    }

    ~Impl() {
        stop(std::chrono::milliseconds(0));
        // Sessions in these queues own sockets: they go while io_ still lives.
        std::deque<BudgetWaiter> waiting;
        {
            const std::lock_guard lock(budget_mutex_);
            waiting.swap(budget_waiting_);
        }
        waiting.clear();
        for (Lane* lane : {&general_, &isolated_}) {
            std::deque<std::function<void()>> pending;
            {
                const std::lock_guard lock(lane->pending_mutex);
                pending.swap(lane->pending);
            }
        }
    }

    bool started() const noexcept { return port_ != 0; }

    void start() {
        if (started()) {
            return;
        }
        beast::error_code ec;
        const auto address = asio::ip::make_address(options_.host, ec);
        if (ec) {
            throw ConfigError("invalid listen address '" + options_.host + "'");
        }
        const tcp::endpoint endpoint(address, options_.port);
        acceptor_.open(endpoint.protocol(), ec);
        if (!ec) {
            acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        }
        if (!ec) {
            acceptor_.bind(endpoint, ec);
        }
        if (!ec) {
            acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            throw ConfigError("cannot listen on " + options_.host + ":" +
                              std::to_string(options_.port) + ": " + ec.message());
        }
        port_ = acceptor_.local_endpoint().port();
        accept();
        sweep();
        // Every thread runs the I/O loop; at most one per handler slot is inside a handler at
        // any time, so `io_threads` of them are always free for I/O.
        const int threads = std::max(1, options_.io_threads) + general_.slots + isolated_.slots;
        for (int i = 0; i < threads; ++i) {
            threads_.emplace_back([this] { io_.run(); });
        }
    }

    unsigned short port() const noexcept { return port_; }

    void stop(std::chrono::milliseconds drain) {
        if (stopped_.exchange(true)) {
            return;
        }
        asio::post(acceptor_.get_executor(), [this] {
            beast::error_code ignored;
            acceptor_.close(ignored);
        });
        asio::post(sweeper_.get_executor(), [this] { sweeper_.cancel(); });
        {
            std::unique_lock lock(drain_mutex_);
            drained_.wait_for(lock, drain, [this] { return in_flight_.load() == 0; });
        }
        io_.stop();
        for (auto& thread : threads_) {
            if (thread.joinable()) {
                thread.join();
            }
        }
    }

    HttpResponse dispatch(const HttpRequest& request) const {
        if (handler_ != nullptr && request.path == options_.serve_path) {
            return handler_->handle(request);
        }
        if (options_.routes) {
            try {
                if (auto response = options_.routes(request)) {
                    return std::move(*response);
                }
            } catch (const std::exception&) {
                return json_error(500, "internal", "route handler failed");
            }
        }
        return json_error(404, "not_found", "no route for this path");
    }

    bool try_begin_request() {
        if (in_flight_.fetch_add(1) >= options_.max_in_flight) {
            end_request();
            return false;
        }
        return true;
    }

    void end_request() {
        if (in_flight_.fetch_sub(1) == 1) {
            const std::lock_guard lock(drain_mutex_);
            drained_.notify_all();
        }
    }

    /// Handler slots and the handlers waiting for one.
    struct Lane {
        int slots = 0;
        std::atomic<int> busy{0};
        std::mutex pending_mutex;
        std::deque<std::function<void()>> pending;
    };

    /// The lane a request's handler runs in: its own for the isolated prefixes.
    Lane& lane_of(std::string_view path) noexcept {
        for (const auto& prefix : options_.isolated_prefixes) {
            if (path.substr(0, prefix.size()) == prefix) {
                return isolated_;
            }
        }
        return general_;
    }

    bool answers_inline(std::string_view path) const noexcept {
        return std::find(options_.inline_paths.begin(), options_.inline_paths.end(), path) !=
               options_.inline_paths.end();
    }

    /// Runs `task` (a handler: user code that may block) on this thread when one of the lane's
    /// handler slots is free, else queues it for the lane's next free slot. Never takes the
    /// last I/O threads.
    void run_handler(Lane& lane, std::function<void()> task) {
        {
            const std::lock_guard lock(lane.pending_mutex);
            // First come, first served: nothing jumps the queue for a slot just freed.
            if (!lane.pending.empty() || !try_take_slot(lane)) {
                lane.pending.push_back(std::move(task));
                task = nullptr;
            }
        }
        if (!task) {
            // A slot may have been freed before the task was queued.
            return drain_one(lane);
        }
        task();
        release_slot(lane);
    }
    const HttpServerOptions& options() const noexcept { return options_; }
    bool stopping() const noexcept { return stopped_.load(); }

    /// Whether a body of `bytes` counts against the budget: small ones never wait.
    static bool counts_body(std::size_t bytes) noexcept { return bytes > kUncountedBodyBytes; }

    /// A new body's share of the budget, holding nothing yet.
    BodyReservation start_body() noexcept { return BodyReservation(this, ++last_body_); }

    /// Called with true once the bytes are counted, false when the wait timed out.
    using BodyGranted = std::function<void(bool)>;

    /// Counts `bytes` of `body` (bytes of it just received) against the budget: true when they
    /// fit now, else `granted` is queued, first come first served, to be called once enough is
    /// released. Only bytes received are counted, so a client that announces a body and sends
    /// nothing holds nothing. The oldest body holding any bytes always goes on (a body up to
    /// `max_body_bytes` is never refused for the budget, and bodies read in part never wait on
    /// each other in a circle): the bytes held stay within the budget plus one body.
    bool hold_body(std::uint64_t body, std::size_t bytes, BodyGranted granted) {
        const std::lock_guard lock(budget_mutex_);
        if (may_hold(body, bytes)) {
            hold(body, bytes);
            return true;
        }
        budget_waiting_.push_back(
            {body, bytes, std::move(granted), std::chrono::steady_clock::now()});
        return false;
    }

    /// Counts `bytes` more of a body being read when they fit now (never waits).
    bool try_hold_body(std::uint64_t body, std::size_t bytes) noexcept {
        const std::lock_guard lock(budget_mutex_);
        if (!may_hold(body, bytes)) {
            return false;
        }
        hold(body, bytes);
        return true;
    }

    void release_body(std::uint64_t body) {
        std::vector<BodyGranted> ready;
        {
            const std::lock_guard lock(budget_mutex_);
            if (const auto it = held_by_body_.find(body); it != held_by_body_.end()) {
                body_bytes_held_ -= it->second;
                held_by_body_.erase(it);
            }
            if (stopped_.load()) {
                return;  // nobody is let in any more
            }
            // The body now the oldest holding bytes goes on even when it waits behind others.
            if (!held_by_body_.empty()) {
                const std::uint64_t oldest = held_by_body_.begin()->first;
                const auto waiter =
                    std::find_if(budget_waiting_.begin(), budget_waiting_.end(),
                                 [oldest](const BudgetWaiter& w) { return w.body == oldest; });
                if (waiter != budget_waiting_.end()) {
                    hold(waiter->body, waiter->bytes);
                    ready.push_back(std::move(waiter->granted));
                    budget_waiting_.erase(waiter);
                }
            }
            while (!budget_waiting_.empty() && fits(budget_waiting_.front().bytes)) {
                auto& next = budget_waiting_.front();
                hold(next.body, next.bytes);
                ready.push_back(std::move(next.granted));
                budget_waiting_.pop_front();
            }
        }
        for (auto& granted : ready) {
            granted(true);
        }
    }

    /// A string to read a counted body of `bytes` into: a pooled one large enough when there is
    /// one, so large bodies reuse memory instead of growing every thread's malloc arena.
    std::string take_body_buffer(std::size_t bytes) {
        std::string buffer;
        if (bytes <= kUncountedBodyBytes) {
            return buffer;
        }
        const std::lock_guard lock(budget_mutex_);
        auto best = spare_bodies_.end();
        for (auto it = spare_bodies_.begin(); it != spare_bodies_.end(); ++it) {
            if (it->capacity() >= bytes &&
                (best == spare_bodies_.end() || it->capacity() < best->capacity())) {
                best = it;
            }
        }
        if (best != spare_bodies_.end()) {
            spare_body_bytes_ -= best->capacity();
            buffer = std::move(*best);
            spare_bodies_.erase(best);
        }
        return buffer;
    }

    /// Keeps a finished request's body for reuse. The spares stay within the budget; smaller
    /// ones make room for a larger one, which serves any body they could.
    void recycle_body_buffer(std::string&& body) {
        const std::size_t capacity = body.capacity();
        const std::size_t limit = options_.max_buffered_body_bytes;
        if (capacity <= kUncountedBodyBytes || limit == 0 || capacity > limit) {
            return;
        }
        std::vector<std::string> dropped;  // freed outside the lock
        const std::lock_guard lock(budget_mutex_);
        while (!spare_bodies_.empty() && spare_body_bytes_ + capacity > limit) {
            auto smallest = std::min_element(spare_bodies_.begin(), spare_bodies_.end(),
                                             [](const std::string& a, const std::string& b) {
                                                 return a.capacity() < b.capacity();
                                             });
            if (smallest->capacity() >= capacity) {
                return;  // not kept (the caller frees it): the spares are at least as useful
            }
            spare_body_bytes_ -= smallest->capacity();
            dropped.push_back(std::move(*smallest));
            spare_bodies_.erase(smallest);
        }
        body.clear();
        spare_body_bytes_ += capacity;
        spare_bodies_.push_back(std::move(body));
    }

    /// Puts a new connection under the sweeper's watch (it drops out once destroyed).
    /// Counts a new connection from `address`; false when the caps are reached.
    bool admit(const std::string& address) {
        const std::lock_guard lock(admission_mutex_);
        if (open_connections_ >= options_.max_connections) {
            return false;
        }
        auto& from_address = per_address_[detail::connection_group(address)];
        if (from_address >= options_.max_connections_per_address) {
            return false;
        }
        ++from_address;
        ++open_connections_;
        return true;
    }

    void leave(const std::string& address) {
        const std::lock_guard lock(admission_mutex_);
        --open_connections_;
        if (const auto it = per_address_.find(detail::connection_group(address));
            it != per_address_.end() && --it->second == 0) {
            per_address_.erase(it);
        }
    }

    /// Accepts again after `delay` (when accepting failed: no file descriptors left, say).
    void accept_later(std::chrono::milliseconds delay) {
        accept_retry_.expires_after(delay);
        accept_retry_.async_wait([this](beast::error_code ec) {
            if (!ec && acceptor_.is_open() && !stopped_.load()) {
                accept();
            }
        });
    }

    void track(std::weak_ptr<TimedConnection> connection) {
        const std::lock_guard lock(connections_mutex_);
        connections_.push_back(std::move(connection));
    }

private:
    // Every connection's deadline is checked this often, so a timeout fires up to this late.
    std::chrono::milliseconds sweep_interval() const {
        const auto quarter =
            std::chrono::duration_cast<std::chrono::milliseconds>(options_.read_timeout) / 4;
        return std::clamp(quarter, std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
    }

    void sweep() {
        sweeper_.expires_after(sweep_interval());
        sweeper_.async_wait([this](beast::error_code ec) {
            if (ec || stopped_.load()) {
                return;
            }
            std::vector<std::shared_ptr<TimedConnection>> live;
            {
                const std::lock_guard lock(connections_mutex_);
                std::erase_if(connections_, [&live](const std::weak_ptr<TimedConnection>& weak) {
                    auto connection = weak.lock();
                    if (!connection) {
                        return true;  // closed and gone
                    }
                    live.push_back(std::move(connection));
                    return false;
                });
            }
            const auto now = std::chrono::steady_clock::now();
            for (const auto& connection : live) {
                connection->close_if_expired(now);
            }
            refuse_stale_budget_waiters(now);
            sweep();
        });
    }

    // Bodies that waited longer than the budget wait timeout are refused (oldest first: the
    // queue is in arrival order).
    void refuse_stale_budget_waiters(std::chrono::steady_clock::time_point now) {
        std::vector<BodyGranted> refused;
        {
            const std::lock_guard lock(budget_mutex_);
            while (!budget_waiting_.empty() &&
                   now - budget_waiting_.front().since >= options_.budget_wait_timeout) {
                refused.push_back(std::move(budget_waiting_.front().granted));
                budget_waiting_.pop_front();
            }
        }
        for (auto& granted : refused) {
            granted(false);
        }
    }

    // Small bodies (most calls, health checks) never wait behind large ones, and skip the lock.
    static constexpr std::size_t kUncountedBodyBytes = 64U * 1024U;

    struct BudgetWaiter {
        std::uint64_t body;
        std::size_t bytes;
        BodyGranted granted;
        std::chrono::steady_clock::time_point since;
    };

    bool fits(std::size_t bytes) const noexcept {
        const std::size_t limit = options_.max_buffered_body_bytes;
        return limit == 0 || body_bytes_held_ == 0 || body_bytes_held_ + bytes <= limit;
    }

    // Under budget_mutex_: whether `bytes` more of `body` are counted now.
    bool may_hold(std::uint64_t body, std::size_t bytes) const noexcept {
        const bool oldest = !held_by_body_.empty() && held_by_body_.begin()->first == body;
        return oldest || (budget_waiting_.empty() && fits(bytes));
    }

    // Under budget_mutex_.
    void hold(std::uint64_t body, std::size_t bytes) {
        if (bytes > 0) {
            held_by_body_[body] += bytes;
            body_bytes_held_ += bytes;
        }
    }

    void accept();

    static bool try_take_slot(Lane& lane) noexcept {
        int busy = lane.busy.load();
        while (busy < lane.slots) {
            if (lane.busy.compare_exchange_weak(busy, busy + 1)) {
                return true;
            }
        }
        return false;
    }

    void release_slot(Lane& lane) {
        lane.busy.fetch_sub(1);
        bool waiting = false;
        {
            const std::lock_guard lock(lane.pending_mutex);
            waiting = !lane.pending.empty();
        }
        if (waiting) {
            asio::post(io_, [this, &lane] { drain_one(lane); });
        }
    }

    // Runs the lane's oldest queued handler if one of its slots is free.
    void drain_one(Lane& lane) {
        if (!try_take_slot(lane)) {
            return;  // the handler holding the slot drains when it releases it
        }
        std::function<void()> task;
        {
            const std::lock_guard lock(lane.pending_mutex);
            if (!lane.pending.empty()) {
                task = std::move(lane.pending.front());
                lane.pending.pop_front();
            }
        }
        if (task) {
            task();
        }
        release_slot(lane);
    }

    const ServeHandler* handler_;
    HttpServerOptions options_;
    // Before io_: sessions destroyed with it leave their admission and return their budget.
    // (~Impl empties the queues that hold sessions, which own sockets, while io_ still lives.)
    std::atomic<bool> stopped_{false};
    std::mutex admission_mutex_;
    std::size_t open_connections_ = 0;
    std::map<std::string, std::size_t> per_address_;
    std::mutex budget_mutex_;
    std::size_t body_bytes_held_ = 0;
    std::map<std::uint64_t, std::size_t> held_by_body_;  // the bodies holding bytes, oldest first
    std::atomic<std::uint64_t> last_body_{0};
    std::deque<BudgetWaiter> budget_waiting_;
    std::vector<std::string> spare_bodies_;
    std::size_t spare_body_bytes_ = 0;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    asio::steady_timer sweeper_{io_};
    asio::steady_timer accept_retry_{io_};
    std::mutex connections_mutex_;
    std::vector<std::weak_ptr<TimedConnection>> connections_;
    Lane general_;
    Lane isolated_;
    std::vector<std::thread> threads_;
    unsigned short port_ = 0;
    std::atomic<std::size_t> in_flight_{0};
    std::mutex drain_mutex_;
    std::condition_variable drained_;
};

bool BodyReservation::grow(std::size_t bytes) noexcept {
    return server_ != nullptr && server_->try_hold_body(body_, bytes);
}

void BodyReservation::reset() noexcept {
    if (auto* server = std::exchange(server_, nullptr)) {
        server->release_body(body_);
    }
}

namespace {

class Session : public TimedConnection, public std::enable_shared_from_this<Session> {
public:
    /// A connection `server` admitted from `address` (see HttpServer::Impl::admit).
    Session(tcp::socket socket, std::string address, HttpServer::Impl& server)
        : remote_address_(std::move(address)), stream_(std::move(socket)), server_(server) {
        // Beast reads at most the buffer's free capacity at a time (at least 512 bytes).
        buffer_.reserve(16U * 1024U);
    }
    ~Session() override { server_.leave(remote_address_); }

    static std::string peer_address(const tcp::socket& socket) {
        boost::system::error_code ec;
        const auto endpoint = socket.remote_endpoint(ec);
        return ec ? std::string() : endpoint.address().to_string();
    }

    void start() {
        server_.track(shared_from_this());
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
    }

    void close_if_expired(std::chrono::steady_clock::time_point now) override {
        if (!expired(now)) {
            return;
        }
        // Checked again on the strand: the connection may have moved on since.
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            if (self->expired(std::chrono::steady_clock::now())) {
                self->disarm();
                self->close();  // the pending read or write completes with an error
            }
        });
    }

private:
    // A request handed to a handler, with its share of the body budget.
    struct Call {
        HttpRequest request;
        BodyReservation reservation;
    };

    // Deadlines are steady_clock ticks (0: none), read by the sweeper's thread.
    void arm(std::chrono::steady_clock::duration timeout) {
        deadline_.store((std::chrono::steady_clock::now() + timeout).time_since_epoch().count(),
                        std::memory_order_relaxed);
    }
    void disarm() { deadline_.store(0, std::memory_order_relaxed); }
    bool expired(std::chrono::steady_clock::time_point now) const {
        const auto deadline = deadline_.load(std::memory_order_relaxed);
        return deadline != 0 && deadline <= now.time_since_epoch().count();
    }

    void read() {
        parser_.emplace();
        parser_->body_limit(server_.options().max_body_bytes);
        parser_->header_limit(64U * 1024U);
        body_.clear();
        body_read_ = false;
        arm(server_.options().read_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    self->on_header(ec);
                                });
    }

    // A body of known length is read straight from the socket into the request's string, in
    // large reads (Beast's parser would copy it through the read buffer in small pieces). A
    // large one is counted against the body budget as its bytes arrive.
    void on_header(beast::error_code ec) {
        if (ec || parser_->is_done()) {
            return on_read(ec);
        }
        const auto length = parser_->content_length();
        if (!length || parser_->chunked()) {
            // A chunked body's size is known chunk by chunk: each chunk is counted before it is
            // read, and one that does not fit the budget now ends the request with 503.
            reservation_ = server_.start_body();
            parser_->on_chunk_header(on_chunk_);
            arm(server_.options().read_timeout);
            http::async_read(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code read_ec, std::size_t) {
                                 self->on_read(read_ec);
                             });
            return;
        }
        const auto size = static_cast<std::size_t>(*length);
        if (HttpServer::Impl::counts_body(size)) {
            return read_counted_body(size);
        }
        read_body(size);
    }

    // The body waited too long for the budget and stays unread: answer and close.
    void refuse_unread_body() {
        keep_alive_ = false;
        HttpResponse busy = json_error(503, "overloaded", "request bodies are waiting for memory");
        busy.headers.emplace_back("Retry-After", "5");
        write(std::move(busy), parser_->get().version());
    }

    // A small body (not counted), read whole.
    void read_body(std::size_t size) {
        arm(server_.options().read_timeout);
        body_ = server_.take_body_buffer(size);
        body_.resize(size);
        const std::size_t buffered = std::min(buffer_.size(), size);
        asio::buffer_copy(asio::buffer(body_.data(), buffered), buffer_.data());
        buffer_.consume(buffered);
        body_read_ = true;
        if (buffered == size) {
            return on_read({});
        }
        asio::async_read(stream_, asio::buffer(body_.data() + buffered, size - buffered),
                         [self = shared_from_this()](beast::error_code read_ec, std::size_t) {
                             self->on_read(read_ec);
                         });
    }

    // A large body is read a piece at a time, each piece's bytes counted once they arrived: a
    // connection that sends none holds none of the budget (only the piece's buffer, no larger
    // than a small body's). The buffer grows with the bytes received, unless a spare one as
    // large as the body is at hand.
    void read_counted_body(std::size_t size) {
        // The whole body is due within the read timeout, as a body read at once (time spent
        // waiting for the budget aside): a client sending a byte now and then does not keep
        // the connection for ever.
        body_deadline_ = std::chrono::steady_clock::now() + server_.options().read_timeout;
        reservation_ = server_.start_body();
        body_ = server_.take_body_buffer(size);
        body_.clear();
        body_size_ = size;
        body_received_ = 0;
        body_read_ = true;
        const std::size_t buffered = std::min(buffer_.size(), size);
        if (buffered == 0) {
            return read_body_piece();
        }
        body_.resize(buffered);
        asio::buffer_copy(asio::buffer(body_.data(), buffered), buffer_.data());
        buffer_.consume(buffered);
        count_body_piece(buffered);
    }

    void read_body_piece() {
        if (body_received_ == body_size_) {
            return on_read({});
        }
        const std::size_t piece = std::min(body_size_ - body_received_, kBodyPieceBytes);
        const std::size_t needed = body_received_ + piece;
        if (body_.capacity() < needed) {
            body_.reserve(std::min(body_size_, std::max(needed, 2 * body_.capacity())));
        }
        body_.resize(needed);
        deadline_.store(body_deadline_.time_since_epoch().count(), std::memory_order_relaxed);
        stream_.async_read_some(asio::buffer(body_.data() + body_received_, piece),
                                [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                                    if (ec) {
                                        return self->on_read(ec);
                                    }
                                    self->count_body_piece(n);
                                });
    }

    // Counts `bytes` just received, waiting for the budget when they do not fit (the client's
    // next bytes stay in the socket meanwhile).
    void count_body_piece(std::size_t bytes) {
        disarm();  // waiting for the body budget is not the client's delay
        const auto waiting_since = std::chrono::steady_clock::now();
        const bool counted = server_.hold_body(
            reservation_.body(), bytes,
            [self = shared_from_this(), bytes, waiting_since](bool granted) {
                asio::post(self->stream_.get_executor(), [self, bytes, granted, waiting_since] {
                    if (!granted) {
                        return self->refuse_unread_body();
                    }
                    self->body_deadline_ += std::chrono::steady_clock::now() - waiting_since;
                    self->body_received_ += bytes;
                    self->read_body_piece();
                });
            });
        if (counted) {
            body_received_ += bytes;
            read_body_piece();
        }
    }

    void on_read(beast::error_code ec) {
        disarm();  // a handler may take as long as it needs
        if (ec == http::error::end_of_stream || ec == boost::asio::error::operation_aborted ||
            ec == boost::asio::error::bad_descriptor) {
            return close();
        }
        if (ec == boost::asio::error::no_buffer_space) {
            return refuse_unread_body();  // a chunk did not fit the body budget
        }
        if (ec == http::error::body_limit) {
            keep_alive_ = false;
            return write(json_error(413, "body_too_large", "request body is too large"), 11);
        }
        if (ec) {
            keep_alive_ = false;
            return write(json_error(400, "malformed_request", "malformed HTTP request"), 11);
        }
        auto message = parser_->release();
        if (!body_read_) {
            body_ = std::move(message.body());
        }
        keep_alive_ = message.keep_alive() && !server_.stopping();
        const unsigned version = message.version();
        if (server_.options().accepts_upgrade && server_.options().on_upgrade &&
            beast::iequals(message[http::field::upgrade], "websocket")) {
            auto upgrade = std::make_shared<HttpRequest>(to_request(message));
            if (server_.options().accepts_upgrade(*upgrade)) {
                beast::error_code release_error;
                const int fd = stream_.release_socket().release(release_error);
                if (!release_error) {
                    asio::post(stream_.get_executor(), [&server = server_, upgrade, fd] {
                        server.run_handler(server.lane_of(upgrade->path), [&server, upgrade, fd] {
                            server.options().on_upgrade(std::move(*upgrade), fd);
                        });
                    });
                }
                return;
            }
        }
        if (!server_.try_begin_request()) {
            HttpResponse busy = json_error(503, "overloaded", "too many requests in flight");
            busy.headers.emplace_back("Retry-After", "1");
            return write(std::move(busy), version);
        }
        auto call = std::make_shared<Call>(Call{to_request(message), std::move(reservation_)});
        if (server_.answers_inline(call->request.path)) {
            HttpResponse response = server_.dispatch(call->request);
            call.reset();
            server_.end_request();
            return write(std::move(response), version);
        }
        // Function bodies block (databases, SMTP): they run on this thread only while another
        // thread is left for I/O (see run_handler), so no hand-off to a pool is needed.
        auto& lane = server_.lane_of(call->request.path);
        server_.run_handler(lane, [self = shared_from_this(), call, version]() mutable {
            HttpResponse response = self->server_.dispatch(call->request);
            // The body goes back to the pool and its budget is returned before the write.
            self->server_.recycle_body_buffer(std::move(call->request.body));
            call.reset();
            self->server_.end_request();
            asio::dispatch(self->stream_.get_executor(),
                           [self, response = std::move(response), version]() mutable {
                               self->write(std::move(response), version);
                           });
        });
    }

    HttpRequest to_request(http::request<http::string_body>& message) {
        HttpRequest request;
        request.method = std::string(message.method_string());
        const std::string_view target = message.target();
        const std::size_t question = target.find('?');
        request.path = std::string(target.substr(0, question));
        if (question != std::string_view::npos) {
            request.query = std::string(target.substr(question + 1));
        }
        request.headers.reserve(16);
        for (const auto& field : message) {
            request.headers.emplace_back(std::string(field.name_string()),
                                         std::string(field.value()));
        }
        request.body = std::move(body_);
        request.remote_address = remote_address_;
        return request;
    }

    void write(HttpResponse response, unsigned version) {
        server_.recycle_body_buffer(std::move(body_));  // a refused request's body
        body_ = std::string();
        reservation_.reset();
        response_.emplace();
        response_->version(version);
        response_->result(static_cast<unsigned>(response.status));
        for (const auto& [name, value] : response.headers) {
            response_->set(name, value);
        }
        response_->body() = std::move(response.body);
        response_->keep_alive(keep_alive_);
        response_->prepare_payload();
        arm(kWriteTimeout);
        http::async_write(stream_, *response_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec || !self->keep_alive_) {
                                  return self->close();
                              }
                              self->read();
                          });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    static constexpr std::chrono::seconds kWriteTimeout{60};
    // A large body's bytes are read this many at a time, at most.
    static constexpr std::size_t kBodyPieceBytes = 64U * 1024U;

    std::string remote_address_;  // before stream_, which takes the socket
    beast::tcp_stream stream_;
    HttpServer::Impl& server_;
    std::atomic<std::chrono::steady_clock::rep> deadline_{0};
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::string_body>> response_;
    std::string body_;
    BodyReservation reservation_{};
    // Counts each chunk of a chunked body against the budget before it is read.
    std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_ =
        [this](std::uint64_t size, beast::string_view, beast::error_code& ec) {
            if (!reservation_.grow(static_cast<std::size_t>(size))) {
                ec = boost::asio::error::no_buffer_space;
            }
        };
    std::size_t body_size_ = 0;                              // a counted body's length
    std::size_t body_received_ = 0;                          // and how much of it is counted
    std::chrono::steady_clock::time_point body_deadline_{};  // when it must have arrived
    bool body_read_ = false;  // body_ was read directly, not by the parser
    bool keep_alive_ = true;
};

}  // namespace

void HttpServer::Impl::accept() {
    acceptor_.async_accept(
        asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
                    return;
                }
                // Out of file descriptors (or memory): the connection waits in the backlog;
                // accepting again at once would only spin.
                return accept_later(std::chrono::milliseconds(100));
            }
            std::string address = Session::peer_address(socket);
            if (!admit(address)) {
                const HttpResponse busy =
                    json_error(503, "too_many_connections", "too many open connections");
                const std::string refusal =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(busy.body.size()) + "\r\n\r\n" + busy.body;
                beast::error_code ignored;
                socket.non_blocking(true, ignored);  // never wait on a client that reads nothing
                asio::write(socket, asio::buffer(refusal), ignored);
                socket.close(ignored);
            } else {
                beast::error_code ignored;  // responses are written whole: Nagle only delays them
                socket.set_option(tcp::no_delay(true), ignored);
                std::make_shared<Session>(std::move(socket), std::move(address), *this)->start();
            }
            if (acceptor_.is_open()) {
                accept();
            }
        });
}

HttpServer::HttpServer(const ServeHandler& handler, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(&handler, std::move(options))) {}

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(nullptr, std::move(options))) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() {
    impl_->start();
}

unsigned short HttpServer::port() const noexcept {
    return impl_->port();
}

void HttpServer::stop(std::chrono::milliseconds drain) {
    impl_->stop(drain);
}

int HttpServer::run() {
    asio::io_context signals_io;
    asio::signal_set signals(signals_io, SIGINT, SIGTERM);
    signals.async_wait([](beast::error_code, int) {});
    start();  // no-op when already started
    signals_io.run();
    stop();
    return 0;
}

}  // namespace inngest
