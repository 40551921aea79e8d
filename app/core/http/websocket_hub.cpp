#include "core/http/websocket_hub.hpp"

#include "core/auth/jwt.hpp"
#include "core/http/router.hpp"
#include "core/log/logger.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

namespace riveredge::core {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

}  // namespace

class WebSocketHub::Impl {
public:
    class Session : public std::enable_shared_from_this<Session> {
    public:
        Session(Impl& hub, tcp::socket socket, Principal who)
            : hub_(hub),
              ws_(std::move(socket)),
              expiry_(ws_.get_executor()),
              write_deadline_(ws_.get_executor()),
              who_(std::move(who)) {}

        void start(http::request<http::string_body> request,
                   std::chrono::system_clock::time_point expires_at) {
            ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
            ws_.read_message_max(kMaxClientMessageBytes);
            // Each session counts against its user's cap from the handshake on.
            ws_.async_accept(request,
                             [self = shared_from_this(), expires_at](beast::error_code ec) {
                                 if (ec) {
                                     self->hub_.release(self->who_);
                                     return;
                                 }
                                 self->hub_.add(self);
                                 self->close_at(expires_at);
                                 self->read();
                             });
        }

        void send(std::string text) {
            asio::post(ws_.get_executor(),
                       [self = shared_from_this(), text = std::move(text)]() mutable {
                           if (self->closing_) {
                               return;
                           }
                           if (self->queued_bytes_ + text.size() > kMaxQueuedBytes) {
                               return self->close_too_slow();
                           }
                           self->queued_bytes_ += text.size();
                           self->queue_.push_back(std::move(text));
                           if (self->queue_.size() == 1) {
                               self->write();
                           }
                       });
        }

        const Principal& who() const noexcept { return who_; }

    private:
        // The token's end is the connection's end.
        void close_at(std::chrono::system_clock::time_point expires_at) {
            expiry_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                expires_at - std::chrono::system_clock::now()));
            expiry_.async_wait([self = shared_from_this()](beast::error_code ec) {
                if (ec) {
                    return;  // cancelled: the session ended first
                }
                self->close(
                    websocket::close_reason(websocket::close_code::policy_error, "token expired"));
            });
        }

        // A client that does not keep up with its pushes: what it has not been sent yet is
        // dropped, and the socket closes once the frame being written (if any) is through.
        void close_too_slow() {
            if (queue_.size() > 1) {
                queue_.erase(queue_.begin() + 1, queue_.end());
                queued_bytes_ = queue_.front().size();
            }
            close(websocket::close_reason(websocket::close_code::policy_error,
                                          "too many pushes waiting for this connection"));
        }

        // Beast sends the close frame after a write under way; both are bounded by the write
        // timeout.
        void close(const websocket::close_reason& reason) {
            if (closing_) {
                return;
            }
            closing_ = true;
            arm_write_deadline();
            ws_.async_close(reason, [self = shared_from_this()](beast::error_code) {
                self->write_deadline_.cancel();
            });
        }

        // A write (or close) that the client does not take within the timeout ends the
        // connection: receiving from the client does not keep it alive.
        void arm_write_deadline() {
            write_deadline_.expires_after(kWriteTimeout);
            write_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
                if (!ec) {
                    beast::error_code ignored;
                    beast::get_lowest_layer(self->ws_).close(ignored);  // pending work fails
                }
            });
        }

        void read() {
            ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec) {
                    self->expiry_.cancel();
                    self->write_deadline_.cancel();
                    self->hub_.remove(self);
                    return;
                }
                self->buffer_.clear();  // clients have nothing to say; keep the connection alive
                self->read();
            });
        }

        void write() {
            ws_.text(true);
            arm_write_deadline();
            ws_.async_write(asio::buffer(queue_.front()),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                if (!self->closing_) {
                                    self->write_deadline_.cancel();
                                }
                                if (ec) {
                                    self->hub_.remove(self);
                                    return;
                                }
                                self->queued_bytes_ -= self->queue_.front().size();
                                self->queue_.pop_front();
                                if (!self->queue_.empty() && !self->closing_) {
                                    self->write();
                                }
                            });
        }

        // Pushes not yet written to a socket past this get it closed (1008): a client that
        // reads nothing cannot make the process queue messages for it without end.
        static constexpr std::size_t kMaxQueuedBytes = std::size_t{1} << 20;
        // Clients have nothing to say: larger frames close the socket (1009).
        static constexpr std::size_t kMaxClientMessageBytes = 4096;
        static constexpr std::chrono::seconds kWriteTimeout{30};

        Impl& hub_;
        websocket::stream<tcp::socket> ws_;
        asio::steady_timer expiry_;
        asio::steady_timer write_deadline_;  // the write (or close) under way must end by then
        beast::flat_buffer buffer_;
        std::deque<std::string> queue_;
        std::size_t queued_bytes_ = 0;  // in queue_
        bool closing_ = false;          // a close frame is on its way: nothing else is sent
        Principal who_;
    };

    explicit Impl(std::string secret)
        : secret_(std::move(secret)),
          guard_(asio::make_work_guard(io_)),
          thread_([this] { io_.run(); }) {}

    ~Impl() {
        guard_.reset();
        io_.stop();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    void adopt(const inngest::HttpRequest& request, int fd) {
        tcp::socket socket(asio::make_strand(io_));
        beast::error_code ec;
        socket.assign(tcp::v4(), fd, ec);
        if (ec) {
            ::close(fd);
            return;
        }
        const auto refuse = [&](const char* status, const char* code, const char* message) {
            const std::string body = std::string(R"({"error":{"code":")") + code +
                                     R"(","message":")" + message + R"(","details":null}})";
            const std::string refusal = std::string("HTTP/1.1 ") + status +
                                        "\r\nContent-Type: application/json\r\nConnection: "
                                        "close\r\nContent-Length: " +
                                        std::to_string(body.size()) + "\r\n\r\n" + body;
            asio::write(socket, asio::buffer(refusal), ec);
            socket.close(ec);
        };
        std::string token;
        if (const auto header = request.header("Authorization"); header.starts_with("Bearer ")) {
            token = std::string(header.substr(7));
        } else {
            std::map<std::string, std::string> query;
            try {
                query = parse_query(request.query);
            } catch (const DomainError&) {
                return refuse("400 Bad Request", "bad_request",
                              "the query holds a malformed percent-escape");
            }
            if (const auto it = query.find("token"); it != query.end()) {
                token = it->second;
            }
        }
        auto verified = verify_token_until(token, secret_);
        if (!verified) {
            return refuse("401 Unauthorized", "unauthorized", "a valid token is required");
        }
        if (!admit(verified->who)) {
            return refuse("429 Too Many Requests", "too_many_connections",
                          "this user has too many open connections");
        }
        http::request<http::string_body> handshake;
        handshake.method_string(request.method);
        handshake.target(request.path + (request.query.empty() ? "" : "?" + request.query));
        handshake.version(11);
        for (const auto& [name, value] : request.headers) {
            handshake.insert(name, value);
        }
        const auto expires_at = verified->expires_at;
        std::make_shared<Session>(*this, std::move(socket), std::move(verified->who))
            ->start(std::move(handshake), expires_at);
    }

    // Counts a connection against its user's cap; false when the cap is reached.
    bool admit(const Principal& who) {
        const std::lock_guard lock(mutex_);
        auto& count = per_user_[{who.tenant.value(), who.user_id}];
        if (count >= kMaxConnectionsPerUser) {
            return false;
        }
        ++count;
        return true;
    }

    void release(const Principal& who) {
        const std::lock_guard lock(mutex_);
        const auto key = std::pair{who.tenant.value(), who.user_id};
        if (const auto it = per_user_.find(key); it != per_user_.end() && --it->second == 0) {
            per_user_.erase(it);
        }
    }

    void add(const std::shared_ptr<Session>& session) {
        const std::lock_guard lock(mutex_);
        sessions_.insert(session);
    }

    void remove(const std::shared_ptr<Session>& session) {
        bool removed = false;
        {
            const std::lock_guard lock(mutex_);
            removed = sessions_.erase(session) == 1;
        }
        if (removed) {
            release(session->who());
        }
    }

    void publish(const TenantId& tenant, const std::string& user, const std::string& text) {
        std::vector<std::shared_ptr<Session>> targets;
        {
            const std::lock_guard lock(mutex_);
            for (const auto& session : sessions_) {
                if (session->who().tenant == tenant && session->who().user_id == user) {
                    targets.push_back(session);
                }
            }
        }
        for (const auto& session : targets) {
            session->send(text);
        }
    }

    std::size_t connections() const {
        const std::lock_guard lock(mutex_);
        return sessions_.size();
    }

private:
    std::string secret_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    mutable std::mutex mutex_;
    std::set<std::shared_ptr<Session>> sessions_;
    std::map<std::pair<std::string, std::string>, std::size_t> per_user_;
    std::thread thread_;
};

WebSocketHub::WebSocketHub(std::string jwt_secret)
    : impl_(std::make_unique<Impl>(std::move(jwt_secret))) {}
WebSocketHub::~WebSocketHub() = default;
void WebSocketHub::adopt(const inngest::HttpRequest& request, int native_socket) {
    impl_->adopt(request, native_socket);
}
void WebSocketHub::publish(const TenantId& tenant,
                           const std::string& user_id,
                           const std::string& text) {
    impl_->publish(tenant, user_id, text);
}
std::size_t WebSocketHub::connections() const {
    return impl_->connections();
}

}  // namespace riveredge::core
