#include "agent/etcd/etcd_watch.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/etcd/base64.hpp"
#include "agent/etcd/gateway_json.hpp"
#include "agent/etcd/http_client.hpp"

namespace nb {

namespace {

// A watch response bigger than this is a broken stream, not data (etcd's own limit on a
// request is 1.5 MiB; a response batches events of up to 1000 revisions).
constexpr size_t kMaxLine = 64u << 20;

// Calls a callback of the owner's; one that throws is logged, not fatal to the watch.
template <class F>
void guarded(const char* which, F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        spdlog::error("etcd watch: the {} callback threw: {}", which, e.what());
    }
}

// How one stream ended.
struct StreamEnd {
    bool created = false;      // etcd confirmed the watch: the member works
    bool resubscribe = false;  // compacted: watch again from the new start revision
    bool broken = false;       // what the member sent was wrong: no better than no stream
    std::string error;         // why it ended, when it failed
};

}  // namespace

struct EtcdWatch::Impl {
    EtcdOptions options;
    std::vector<EtcdEndpoint> endpoints;
    EtcdWatchSpec spec;
    EtcdWatchCallbacks cb;
    EtcdWatchTiming timing;
    std::atomic<uint64_t> streams{0};

    std::mutex mu;
    std::condition_variable_any cv;
    httplib::Client* active = nullptr;  // the stream's client, for stop() to cut it
    bool exited = false;

    // Thread's own.
    int64_t next = 0;  // the revision to watch from (0: from now)
    bool finished = false;
    std::optional<bool> reported;
    std::jthread thread;

    void run(std::stop_token st);
    StreamEnd stream(size_t member, std::stop_token st);
    bool feed(std::string& buf, const char* data, size_t n, size_t member, StreamEnd& end);
    void on_response(const etcd::WatchResponse& w, size_t member, StreamEnd& end);
    void report(bool connected, const std::string& detail);
    std::string create_request() const;
};

void EtcdWatch::Impl::report(bool connected, const std::string& detail) {
    if (reported == connected) return;
    reported = connected;
    if (connected)
        spdlog::info("etcd watch: streaming from {}", detail);
    else
        spdlog::warn("etcd watch: {}", detail);
    if (cb.state) guarded("state", [&] { cb.state(connected, detail); });
}

std::string EtcdWatch::Impl::create_request() const {
    etcd::Json c = {{"key", etcd::base64_encode(etcd::range_key(spec.key, spec.range_end))},
                    {"progress_notify", true}};
    if (!spec.range_end.empty()) c["range_end"] = etcd::base64_encode(spec.range_end);
    if (next > 0) c["start_revision"] = std::to_string(next);
    return etcd::Json{{"create_request", c}}.dump();
}

void EtcdWatch::Impl::on_response(const etcd::WatchResponse& w, size_t member, StreamEnd& end) {
    if (w.created) {
        end.created = true;
        // Watching "from now" means from after the revision the watch was created at.
        if (next == 0) next = w.revision + 1;
        report(true, endpoints[member].url());
    }
    if (w.compact_revision > 0) {
        int64_t from = w.compact_revision;
        if (cb.compacted) guarded("compacted", [&] { from = cb.compacted(w.compact_revision); });
        if (from <= 0) finished = true;
        next = from;
        end.resubscribe = true;
        return;
    }
    if (w.canceled) {
        end.broken = true;
        end.error = "etcd canceled the watch" +
                    (w.cancel_reason.empty() ? std::string() : ": " + w.cancel_reason);
        return;
    }
    // Events before `next` were delivered on an earlier stream: never twice.
    std::vector<EtcdEvent> fresh;
    for (const EtcdEvent& e : w.events)
        if (e.kv.mod_revision >= next) fresh.push_back(e);
    if (fresh.empty()) return;
    const int64_t rev = fresh.back().kv.mod_revision;
    if (cb.events) guarded("events", [&] { cb.events(fresh, rev); });
    next = rev + 1;
}

// Splits the stream into lines and handles each; false ends the stream.
bool EtcdWatch::Impl::feed(std::string& buf, const char* data, size_t n, size_t member,
                           StreamEnd& end) {
    buf.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string_view line(buf.data() + start, nl - start);
        if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
        try {
            on_response(etcd::decode_watch_line(line), member, end);
        } catch (const EtcdError& e) {
            end.error = e.what();
            end.broken = true;
        }
        if (!end.error.empty() || end.resubscribe) return false;
    }
    buf.erase(0, start);
    if (buf.size() > kMaxLine) {
        end.error = "a watch response longer than " + std::to_string(kMaxLine) + " bytes";
        end.broken = true;
        return false;
    }
    return true;
}

StreamEnd EtcdWatch::Impl::stream(size_t member, std::stop_token st) {
    StreamEnd end;
    std::unique_ptr<httplib::Client> c = etcd::make_http_client(endpoints[member], options);
    etcd::set_timeout([&](time_t s, time_t us) { c->set_read_timeout(s, us); },
                      timing.idle_timeout);
    {
        std::lock_guard lk(mu);
        if (st.stop_requested()) return end;
        active = c.get();
    }
    ++streams;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v3/watch";
    req.body = create_request();
    req.set_header("Content-Type", "application/json");
    int status = 0;
    std::string buf;
    req.response_handler = [&](const httplib::Response& r) {
        status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (st.stop_requested()) return false;
        if (status == 200) return feed(buf, data, n, member, end);
        if (buf.size() < 4096) buf.append(data, std::min<size_t>(n, 4096));  // the error
        return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    c->send(req, res, err);
    {
        std::lock_guard lk(mu);
        active = nullptr;
    }
    if (!end.error.empty() || end.resubscribe) return end;
    if (status != 0 && status != 200) {
        auto e = etcd::gateway_error(etcd::Json::parse(buf, nullptr, false));
        end.error = "HTTP " + std::to_string(status) + (e ? ": " + e->message : std::string());
    } else if (err != httplib::Error::Success && err != httplib::Error::Canceled) {
        end.error = etcd::transport_error_text(err, endpoints[member], options);
    } else {
        end.error = "the stream ended";
    }
    return end;
}

void EtcdWatch::Impl::run(std::stop_token st) {
    ::pthread_setname_np(::pthread_self(), "nb-etcd-watch");
    // OpenSSL writes to the socket without MSG_NOSIGNAL (a close_notify after stop() cut
    // the stream): on this thread SIGPIPE stays pending instead of ending the process.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    const size_t n = endpoints.size();
    size_t member = 0;
    size_t failed = 0;  // members in a row that gave no stream
    std::string errors;
    auto backoff = timing.backoff_min;
    while (!st.stop_requested() && !finished) {
        StreamEnd end = stream(member, st);
        if (st.stop_requested() || finished) break;
        if (end.resubscribe) continue;  // the same member, from the new revision
        if (end.created && !end.broken) {
            failed = 0;
            errors.clear();
            backoff = timing.backoff_min;
            spdlog::info("etcd watch: the stream from {} ended ({}); watching from revision {}",
                         endpoints[member].url(), end.error, next);
        } else {
            ++failed;
            errors += (errors.empty() ? "" : "; ") + endpoints[member].url() + ": " + end.error;
        }
        member = (member + 1) % n;
        if (failed < n) continue;
        report(false, "no etcd member streams the watch (" + errors + ")");
        std::unique_lock lk(mu);
        cv.wait_for(lk, st, backoff, [] { return false; });
        backoff = std::min(backoff * 2, timing.backoff_max);
        failed = 0;
        errors.clear();
    }
    std::lock_guard lk(mu);
    exited = true;
    cv.notify_all();
}

EtcdWatch::EtcdWatch(const EtcdOptions& options, EtcdWatchSpec spec, EtcdWatchCallbacks callbacks,
                     EtcdWatchTiming timing)
    : impl_(std::make_unique<Impl>()) {
    Impl& w = *impl_;
    w.endpoints = validate_etcd_options(options);
    if (spec.key.empty() && spec.range_end.empty())
        throw std::invalid_argument("etcd watch: no key (a prefix watch has a range_end)");
    for (const EtcdEndpoint& e : w.endpoints) etcd::make_http_client(e, options);  // TLS files
    w.options = options;
    w.spec = std::move(spec);
    w.cb = std::move(callbacks);
    w.timing = timing;
    w.next = w.spec.start_revision;
    w.thread = std::jthread([&w](std::stop_token st) { w.run(st); });
}

EtcdWatch::~EtcdWatch() {
    stop();
}

void EtcdWatch::stop() {
    Impl& w = *impl_;
    if (!w.thread.joinable()) return;
    w.thread.request_stop();
    {
        // A stream that is still connecting cannot be cut yet: cut again until it is.
        std::unique_lock lk(w.mu);
        while (!w.exited) {
            if (w.active) w.active->stop();
            w.cv.wait_for(lk, std::chrono::milliseconds(20));
        }
    }
    w.thread.join();
}

uint64_t EtcdWatch::streams() const {
    return impl_->streams.load();
}

}  // namespace nb
