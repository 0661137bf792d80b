// Runs a ControlServer on its own epoll loop thread, the way the agent does, so tests can
// talk to it over the real socket from the test thread.
#pragma once

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/control/control_server.hpp"

namespace nb::test {

class ServerLoop {
  public:
    // `handler` gets the server too, e.g. to subscribe a client to traces.
    using Handler =
        std::function<ControlReply(ControlServer&, const ControlRequest&, ControlServer::ClientId)>;

    ServerLoop(const std::string& run_dir, const std::string& iface, Handler handler)
        : handler_(std::move(handler)) {
        server_ = std::make_unique<ControlServer>(
            run_dir, iface, [this](const ControlRequest& req, ControlServer::ClientId id) {
                return handler_(*server_, req, id);
            });
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ep_ < 0 || wake_ < 0) throw std::runtime_error("epoll/eventfd");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wake_;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
        server_->register_with(ep_);
        thread_ = std::thread([this] { loop(); });
    }

    ~ServerLoop() {
        call([this] { stop_ = true; });
        thread_.join();
        server_.reset();
        ::close(wake_);
        ::close(ep_);
    }

    // Runs f on the loop thread and returns its result.
    template <typename F>
    auto call(F f) -> decltype(f()) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        {
            std::lock_guard lock(mu_);
            tasks_.emplace_back([&task] { task(); });
        }
        const uint64_t one = 1;
        (void)!::write(wake_, &one, sizeof one);
        return result.get();
    }

    ControlServer& server() { return *server_; }  // only from the loop thread

  private:
    void loop() {
        epoll_event evs[32];
        while (!stop_) {
            const int n = ::epoll_wait(ep_, evs, 32, -1);
            for (int i = 0; i < n; ++i) {
                const int fd = evs[i].data.fd;
                if (fd == wake_) {
                    uint64_t v;
                    (void)!::read(wake_, &v, sizeof v);
                    std::vector<std::function<void()>> tasks;
                    {
                        std::lock_guard lock(mu_);
                        tasks.swap(tasks_);
                    }
                    for (auto& t : tasks) t();
                } else if (server_->owns(fd)) {
                    server_->handle_event(fd, evs[i].events);
                }
            }
        }
    }

    Handler handler_;
    std::unique_ptr<ControlServer> server_;
    int ep_ = -1;
    int wake_ = -1;
    bool stop_ = false;
    std::mutex mu_;
    std::vector<std::function<void()>> tasks_;
    std::thread thread_;
};

// A temporary run directory, removed with everything in it.
struct TempRunDir {
    std::string path;
    TempRunDir() {
        char tmpl[] = "/tmp/nb-control-test-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        path = tmpl;
    }
    ~TempRunDir() { std::filesystem::remove_all(path); }
};

}  // namespace nb::test
