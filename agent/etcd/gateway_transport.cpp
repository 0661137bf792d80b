#include "agent/etcd/gateway_transport.hpp"

#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/etcd/http_client.hpp"

namespace nb::etcd {

namespace {

// Idle connections kept per member: enough for a few worker threads.
constexpr size_t kIdlePerMember = 4;

}  // namespace

struct GatewayTransport::Pool {
    std::mutex mu;
    std::vector<std::vector<std::unique_ptr<httplib::Client>>> idle;
};

// One request at one member: a reply (any status) or why there was none.
struct GatewayTransport::Attempt {
    bool replied = false;
    int status = 0;
    std::string body;
    std::string error;        // no reply
    bool maybe_sent = false;  // no reply, but the member may have got the request
};

GatewayTransport::GatewayTransport(EtcdOptions options)
    : options_(std::move(options)),
      endpoints_(validate_etcd_options(options_)),
      pool_(std::make_unique<Pool>()) {
    // A client per member now, so a certificate that cannot be loaded fails here, by name.
    pool_->idle.resize(endpoints_.size());
    for (size_t i = 0; i < endpoints_.size(); ++i)
        pool_->idle[i].push_back(make_http_client(endpoints_[i], options_));
}

GatewayTransport::~GatewayTransport() = default;

GatewayTransport::Attempt GatewayTransport::attempt(size_t member, const std::string& path,
                                                    const std::string& body,
                                                    std::chrono::milliseconds left) {
    std::unique_ptr<httplib::Client> c;
    {
        std::lock_guard lk(pool_->mu);
        auto& idle = pool_->idle[member];
        if (!idle.empty()) {
            c = std::move(idle.back());
            idle.pop_back();
        }
    }
    if (!c) c = make_http_client(endpoints_[member], options_);
    set_timeout([&](time_t s, time_t us) { c->set_connection_timeout(s, us); },
                std::min(left, options_.dial_timeout));
    set_timeout([&](time_t s, time_t us) { c->set_read_timeout(s, us); }, left);
    set_timeout([&](time_t s, time_t us) { c->set_write_timeout(s, us); }, left);
    ++requests_;
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body;
    req.set_header("Content-Type", "application/json");
    Attempt a;
    req.response_handler = [&](const httplib::Response& r) {
        a.status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        a.body.append(data, n);
        return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    if (!c->send(req, res, err)) {
        // The gateway ends its error replies with an HTTP trailer, which cpp-httplib 0.11
        // cannot read: the status and the whole body (JSON, so a cut one would not parse)
        // came, the connection is spoilt.
        if (err == httplib::Error::Read && a.status > 0 &&
            !Json::parse(a.body, nullptr, false).is_discarded()) {
            a.replied = true;
            return a;
        }
        a.error = transport_error_text(err, endpoints_[member], options_);
        a.maybe_sent =
            err != httplib::Error::Connection && err != httplib::Error::ConnectionTimeout &&
            err != httplib::Error::SSLConnection && err != httplib::Error::SSLServerVerification;
        return a;  // the connection is dropped with `c`
    }
    a.replied = true;
    std::lock_guard lk(pool_->mu);
    if (pool_->idle[member].size() < kIdlePerMember) pool_->idle[member].push_back(std::move(c));
    return a;
}

namespace {

// The gateway's message in an error reply, else the start of the body.
GatewayError error_of(int status, const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (auto e = gateway_error(j)) return *e;
    return GatewayError{
        "HTTP " + std::to_string(status) + (body.empty() ? "" : ": ") + body.substr(0, 200), -1};
}

}  // namespace

// One pass over the members: the reply, or why each failed.
struct GatewayTransport::Round {
    std::optional<Json> reply;
    std::string tried;
    bool busy = false;  // a member answered 5xx: up, but not serving (no leader, say)
};

GatewayTransport::Round GatewayTransport::round(const std::string& path, const std::string& text,
                                                bool idempotent,
                                                std::chrono::steady_clock::time_point deadline) {
    using Clock = std::chrono::steady_clock;
    const size_t n = endpoints_.size();
    const size_t first = current_.load() % n;
    Round r;
    for (size_t i = 0; i < n; ++i) {
        const size_t member = (first + i) % n;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            r.tried += "; no time left for the others (request timeout " +
                       std::to_string(options_.request_timeout.count()) + " ms)";
            break;
        }
        Attempt a = attempt(member, path, text, left);
        if (a.replied && a.status < 500) {
            current_.store(member);
            if (a.status == 200) {
                r.reply = parse_reply(a.body, "reply of " + path);
                return r;
            }
            const GatewayError e = error_of(a.status, a.body);
            throw EtcdError(EtcdErrorKind::Server,
                            "etcd " + endpoints_[member].url() + " " + path + ": " + e.message,
                            e.code);
        }
        if (a.replied) {
            const GatewayError e = error_of(a.status, a.body);
            a.error =
                e.code < 0 ? e.message : e.message + " (HTTP " + std::to_string(a.status) + ")";
            r.busy = true;
        }
        spdlog::debug("etcd {} {}: {}; trying the next member", endpoints_[member].url(), path,
                      a.error);
        r.tried += (r.tried.empty() ? "" : "; ") + endpoints_[member].url() + ": " + a.error;
        current_.store((member + 1) % n);
        if (!idempotent && (a.replied || a.maybe_sent)) {
            r.tried += "; not sent to another member: this one may have applied it";
            break;
        }
    }
    return r;
}

Json GatewayTransport::post(const std::string& path, const Json& body, bool idempotent) {
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
    const std::string text = body.dump();
    // An election takes about a second (etcd's default election timeout), so the pauses
    // grow to that and no further.
    std::chrono::milliseconds pause = 100ms;
    for (int rounds = 1;; ++rounds) {
        Round r = round(path, text, idempotent, deadline);
        if (r.reply) return std::move(*r.reply);
        if (!idempotent || !r.busy || std::chrono::steady_clock::now() + pause >= deadline) {
            if (rounds > 1) r.tried += "; the last of " + std::to_string(rounds) + " rounds";
            throw EtcdError(EtcdErrorKind::Unavailable,
                            "etcd: no member answered " + path + " (" + r.tried + ")");
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
}

}  // namespace nb::etcd
