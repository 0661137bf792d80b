#include "agent/metrics/metrics_server.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#ifdef NB_HAVE_HTTPLIB
#include <httplib.h>
#endif
#include <spdlog/spdlog.h>

#include "agent/debug/resources.hpp"
#include "agent/metrics/prometheus_text.hpp"
#include "base/net/ip.hpp"
#include "base/time.hpp"
#include "base/unique_fd.hpp"

namespace nb {

std::string ListenAddress::text() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(const std::string& s) {
    const std::string expected = "expected ADDR:PORT, e.g. 127.0.0.1:9590 or [::1]:9590";
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon + 1 == s.size())
        throw std::invalid_argument("'" + s + "': " + expected);
    std::string host = s.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos)
        throw std::invalid_argument("'" + s + "': an IPv6 address goes in brackets; " + expected);
    if (!IpAddr::parse(host))
        throw std::invalid_argument("'" + s + "': '" + host + "' is not an IP address; " +
                                    expected);
    const std::string port = s.substr(colon + 1);
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) > 65535)
        throw std::invalid_argument("'" + s + "': '" + port + "' is not a port (0-65535); " +
                                    expected);
    return ListenAddress{host, static_cast<uint16_t>(std::stoul(port))};
}

#ifdef NB_HAVE_HTTPLIB

struct MetricsServer::Impl {
    ListenAddress at;
    std::chrono::milliseconds wait;
    UniqueFd efd;
    httplib::Server http;
    std::thread thread;

    std::mutex mu;
    std::condition_variable cv;
    MetricsSnapshot last;
    uint64_t generation = 0;  // snapshots answered so far
    uint64_t last_ns = 0;     // when the last one was taken (monotonic)
    bool stopping = false;

    // A fresh snapshot, or the last one if the loop does not answer in time; false when
    // there has never been one.
    bool fresh(MetricsSnapshot& out, double& age_s) {
        std::unique_lock lk(mu);
        const uint64_t seen = generation;
        const uint64_t one = 1;
        if (::write(efd.get(), &one, sizeof one) < 0 && errno != EAGAIN)
            spdlog::warn("metrics: waking the event loop: {}", std::strerror(errno));
        cv.wait_for(lk, wait, [&] { return generation != seen || stopping; });
        if (generation == 0) return false;
        out = last;
        age_s = generation != seen ? 0.0 : static_cast<double>(monotonic_ns() - last_ns) / 1e9;
        return true;
    }

    void serve(const httplib::Request&, httplib::Response& res) {
        MetricsSnapshot snap;
        double age = 0;
        if (!fresh(snap, age)) {
            res.status = 503;
            res.set_content("the agent has not answered yet\n", "text/plain");
            return;
        }
        res.set_content(prometheus_text(snap, debug::read_resource_use(), age),
                        std::string(kPrometheusContentType));
    }
};

MetricsServer::MetricsServer(const ListenAddress& at, std::chrono::milliseconds wait)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.at = at;
    m.wait = wait;
    m.efd = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (m.efd.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    // Two workers: a scrape and one more client at a time; a metrics port is for a
    // scraper, not a crowd, and each worker is a thread of the agent.
    m.http.new_task_queue = [] { return new httplib::ThreadPool(2); };
    m.http.set_read_timeout(5, 0);
    m.http.set_write_timeout(5, 0);
    m.http.set_keep_alive_timeout(5);
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second
    // agent share the port and answer half the scrapes.
    m.http.set_socket_options([](int sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    m.http.Get("/metrics",
               [&m](const httplib::Request& req, httplib::Response& res) { m.serve(req, res); });
    m.http.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("nbagent: the metrics are at /metrics\n", "text/plain");
    });
    errno = 0;
    bool bound = false;
    if (at.port == 0) {
        int port = m.http.bind_to_any_port(at.host);
        if (port > 0) {
            m.at.port = static_cast<uint16_t>(port);
            bound = true;
        }
    } else {
        bound = m.http.bind_to_port(at.host, at.port);
    }
    if (!bound)
        throw std::runtime_error("metrics: cannot listen on " + at.text() +
                                 (errno ? std::string(": ") + std::strerror(errno) : "") +
                                 " (is the port in use, or the address not this host's?)");
    m.thread = std::thread([&m] {
        ::pthread_setname_np(::pthread_self(), "nb-metrics");
        m.http.listen_after_bind();
    });
    // stop() only stops a server that runs already: wait for it, so that a destructor
    // right after this (a start that fails further on) cannot miss it and hang.
    for (int i = 0; i < 2000 && !m.http.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    spdlog::info("metrics at http://{}/metrics", m.at.text());
}

MetricsServer::~MetricsServer() {
    {
        std::lock_guard lk(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    impl_->http.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::event_fd() const {
    return impl_->efd.get();
}

void MetricsServer::answer(MetricsSnapshot s) {
    uint64_t n;
    while (::read(impl_->efd.get(), &n, sizeof n) > 0) {
    }
    {
        std::lock_guard lk(impl_->mu);
        impl_->last = std::move(s);
        impl_->last_ns = monotonic_ns();
        ++impl_->generation;
    }
    impl_->cv.notify_all();
}

ListenAddress MetricsServer::address() const {
    return impl_->at;
}

#else  // built without cpp-httplib

struct MetricsServer::Impl {};

MetricsServer::MetricsServer(const ListenAddress&, std::chrono::milliseconds) {
    throw std::runtime_error(
        "--metrics-listen: this nbagent was built without cpp-httplib, so it has no metrics "
        "server (Debian 12: apt-get install libcpp-httplib-dev, then rebuild)");
}
MetricsServer::~MetricsServer() = default;
int MetricsServer::event_fd() const {
    return -1;
}
void MetricsServer::answer(MetricsSnapshot) {}
ListenAddress MetricsServer::address() const {
    return {};
}

#endif

}  // namespace nb
