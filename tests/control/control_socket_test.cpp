// ControlServer and ControlClient over a real UNIX socket. The server only serves root
// (SO_PEERCRED), so these tests need root.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "agent/control/control_client.hpp"
#include "agent/control/protocol.hpp"
#include "base/mapped_buffer.hpp"
#include "tests/control/server_loop.hpp"
#include "tests/support/privileged.hpp"

namespace nb {
namespace {

using test::ServerLoop;
using test::TempRunDir;

constexpr const char* kIface = "wgtest";

AgentStatus big_status(size_t n) {
    AgentStatus s;
    s.interface = kIface;
    s.wg_backend = WgBackend::Userspace;
    s.trigger = TriggerEngine::Bpf;
    s.attach_mode = AttachMode::Tcx;
    s.idle = n;
    for (size_t i = 0; i < n; ++i) {
        PeerStatus p;
        p.public_key = "peer-" + std::to_string(i);
        p.allowed_ips = {"100.64." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) +
                         "/32"};
        p.endpoint = i % 2 ? "" : "198.51.100.7:" + std::to_string(1000 + i % 60000);
        p.wakes = i;
        p.last_wake_ms = i % 3 ? -1 : static_cast<double>(i) / 10;
        p.last_activity_ms = static_cast<int64_t>(i);
        s.peers.push_back(std::move(p));
    }
    return s;
}

// Status handler counting calls; trace subscribes the caller.
ServerLoop::Handler default_handler(std::atomic<int>* calls = nullptr) {
    return [calls](ControlServer& srv, const ControlRequest& req,
                   ControlServer::ClientId id) -> ControlReply {
        if (calls) ++*calls;
        if (std::holds_alternative<TraceRequest>(req)) {
            srv.subscribe_trace(id);
            return nlohmann::json{{"ok", true}};
        }
        if (const auto* idle = std::get_if<PeerIdleRequest>(&req))
            throw std::runtime_error("no such peer: " + idle->public_key.base64());
        return nlohmann::json::parse(status_reply_text(big_status(2)));
    };
}

// A plain blocking connection for sending malformed bytes.
struct RawConn {
    int fd = -1;
    std::string buf;
    explicit RawConn(const std::string& path) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
        }
        timeval tv{10, 0};  // a hang fails the test instead of wedging it
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~RawConn() { ::close(fd); }
    void send_all(const std::string& s) {
        size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) throw std::runtime_error("send failed");
            off += static_cast<size_t>(n);
        }
    }
    // Next line, or nullopt at EOF.
    std::optional<std::string> line() {
        for (;;) {
            auto nl = buf.find('\n');
            if (nl != std::string::npos) {
                std::string l = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                return l;
            }
            char tmp[65536];
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
            if (n == 0) return std::nullopt;
            buf.append(tmp, static_cast<size_t>(n));
        }
    }
};

std::string error_of(const std::string& line) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["ok"], false) << line;
    return j.value("error", "");
}

class ControlSocket : public ::testing::Test {
  protected:
    void SetUp() override { NB_REQUIRE_ROOT(); }
    TempRunDir dir;
    std::string path() const { return socket_path(dir.path, kIface); }
};

TEST_F(ControlSocket, StatusRequestAndSocketMode) {
    ServerLoop loop(dir.path, kIface, default_handler());
    struct stat st {};
    ASSERT_EQ(::stat(path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(dir.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u);

    ControlClient client(ControlClient::find_socket(dir.path, std::nullopt));
    const auto reply = client.request({{"cmd", "status"}});
    const AgentStatus s = agent_status_from_json(reply.at("status"));
    EXPECT_EQ(s.interface, kIface);
    ASSERT_EQ(s.peers.size(), 2u);
    EXPECT_EQ(s.peers[1].public_key, "peer-1");
    // The same connection serves further requests.
    EXPECT_TRUE(client.request({{"cmd", "status"}})["ok"].get<bool>());
}

TEST_F(ControlSocket, BadRequestsGetErrorsNamingTheProblem) {
    std::atomic<int> calls = 0;
    ServerLoop loop(dir.path, kIface, default_handler(&calls));
    ControlClient client(path());
    try {
        client.request({{"cmd", "frobnicate"}});
        FAIL() << "unknown command accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown command \"frobnicate\""), std::string::npos)
            << e.what();
    }
    try {
        client.request({{"detail", true}});
        FAIL() << "request without cmd accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("\"cmd\""), std::string::npos) << e.what();
    }
    try {
        client.request({{"cmd", "peer_idle"}, {"public_key", "abc"}});
        FAIL() << "bad key accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "\"public_key\" is not a WireGuard key");
    }
    const std::string key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    try {
        client.request({{"cmd", "peer_idle"}, {"public_key", key}});
        FAIL() << "handler exception not reported";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(e.what(), "no such peer: " + key);
    }
    EXPECT_EQ(calls.load(), 1);  // only the valid request reached the handler

    RawConn raw(path());
    raw.send_all("{not json\n[1,2]\n\n{\"cmd\":\"status\"}\r\n");
    auto l1 = raw.line();
    ASSERT_TRUE(l1);
    EXPECT_EQ(error_of(*l1).rfind("invalid JSON: ", 0), 0u) << *l1;
    auto l2 = raw.line();
    ASSERT_TRUE(l2);
    EXPECT_NE(error_of(*l2).find("JSON object"), std::string::npos) << *l2;
    auto l3 = raw.line();
    ASSERT_TRUE(l3);
    EXPECT_EQ(nlohmann::json::parse(*l3)["ok"], true);  // blank line skipped, CRLF accepted
}

TEST_F(ControlSocket, OversizedLineIsRejectedAndClosed) {
    std::atomic<int> calls = 0;
    ServerLoop loop(dir.path, kIface, default_handler(&calls));
    loop.call([&] {
        loop.server().set_max_request_line(64 * 1024);
        return 0;
    });
    RawConn raw(path());
    raw.send_all(std::string(64 * 1024 + 10, 'x'));
    auto l = raw.line();
    ASSERT_TRUE(l);
    EXPECT_NE(error_of(*l).find("too long"), std::string::npos) << *l;
    EXPECT_EQ(raw.line(), std::nullopt);  // closed
    EXPECT_EQ(calls.load(), 0);
    EXPECT_EQ(loop.call([&] { return loop.server().client_count(); }), 0u);
}

// Only apply carries a network map: any other request longer than 64 KiB is refused
// before it is parsed, while a long apply goes through (up to its own limit).
TEST_F(ControlSocket, LongLinesAreForApplyOnly) {
    std::atomic<int> calls = 0;
    ServerLoop loop(dir.path, kIface, default_handler(&calls));
    const std::string pad(ControlServer::kMaxRequestLine, 'x');
    {
        RawConn raw(path());
        raw.send_all("{\"cmd\":\"status\",\"pad\":\"" + pad + "\"}\n");
        auto l = raw.line();
        ASSERT_TRUE(l);
        EXPECT_NE(error_of(*l).find("too long (limit 65536 bytes; only an apply"),
                  std::string::npos)
            << *l;
        EXPECT_EQ(calls.load(), 0);
    }
    {
        RawConn raw(path());
        raw.send_all("{ \"cmd\" : \"apply\", \"config_text\":\"" + pad + pad + "\"}\n");
        auto l = raw.line();
        ASSERT_TRUE(l);
        EXPECT_EQ(nlohmann::json::parse(*l)["ok"], true) << l->substr(0, 200);
        EXPECT_EQ(calls.load(), 1);
    }
    {
        // A second "cmd" (JSON lets the last win) does not make a long line a status.
        RawConn raw(path());
        raw.send_all("{\"cmd\":\"apply\",\"pad\":\"" + pad + "\",\"cmd\":\"status\"}\n");
        auto l = raw.line();
        ASSERT_TRUE(l);
        EXPECT_NE(error_of(*l).find("only an apply request may be longer"), std::string::npos)
            << *l;
        EXPECT_EQ(calls.load(), 1);
    }
    loop.call([&] {
        loop.server().set_max_apply_line(100 * 1024);
        return 0;
    });
    RawConn raw(path());
    raw.send_all("{\"cmd\":\"apply\",\"config_text\":\"" + pad + pad + "\"}\n");
    auto l = raw.line();
    ASSERT_TRUE(l);
    EXPECT_NE(error_of(*l).find("too long (limit 102400 bytes)"), std::string::npos) << *l;
    EXPECT_EQ(calls.load(), 1);
}

// A command name from the client is quoted back printable: no terminal escapes reach
// the operator's screen, and the reply is valid UTF-8 JSON.
TEST_F(ControlSocket, UnknownCommandIsQuotedPrintable) {
    ServerLoop loop(dir.path, kIface, default_handler());
    RawConn raw(path());
    raw.send_all("{\"cmd\":\"\\u001b[2Jx\\u202e\"}\n");
    auto l = raw.line();
    ASSERT_TRUE(l);
    const std::string err = error_of(*l);
    EXPECT_NE(err.find("unknown command \"\\x1b[2Jx\\xe2\\x80\\xae\""), std::string::npos) << err;
}

TEST_F(ControlSocket, LastRequestWithoutNewlineIsAnswered) {
    ServerLoop loop(dir.path, kIface, default_handler());
    RawConn raw(path());
    raw.send_all("{\"cmd\":\"status\"}");
    ::shutdown(raw.fd, SHUT_WR);
    auto l = raw.line();
    ASSERT_TRUE(l);
    EXPECT_EQ(nlohmann::json::parse(*l)["ok"], true);
    EXPECT_EQ(raw.line(), std::nullopt);
}

TEST_F(ControlSocket, TraceSubscriberReceivesEventsInOrder) {
    std::promise<void> subscribed;
    ServerLoop loop(
        dir.path, kIface,
        [&](ControlServer& srv, const ControlRequest&, ControlServer::ClientId id) -> ControlReply {
            srv.subscribe_trace(id);
            subscribed.set_value();
            return nlohmann::json{{"ok", true}};
        });
    constexpr int kEvents = 2000;
    std::vector<int64_t> got;
    std::thread reader([&] {
        ControlClient client(path());
        client.stream({{"cmd", "trace"}}, [&](const nlohmann::json& e) {
            got.push_back(e.at("seq").get<int64_t>());
            return got.size() < kEvents;
        });
    });
    subscribed.get_future().get();
    EXPECT_TRUE(loop.call([&] { return loop.server().has_trace_subscribers(); }));
    for (int i = 0; i < kEvents; i += 100) {
        loop.call([&] {
            for (int k = i; k < i + 100; ++k)
                loop.server().publish_trace({{"event", "trigger"}, {"seq", k}});
        });
    }
    reader.join();
    ASSERT_EQ(got.size(), static_cast<size_t>(kEvents));
    for (int i = 0; i < kEvents; ++i) ASSERT_EQ(got[i], i);
}

TEST_F(ControlSocket, SlowSubscriberIsDroppedWithoutBlocking) {
    ServerLoop loop(dir.path, kIface, default_handler());
    RawConn slow(path());
    const int small = 4096;
    ::setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    slow.send_all("{\"cmd\":\"trace\"}\n");
    ASSERT_EQ(slow.line(), std::string("{\"ok\":true}"));

    const std::string payload(1000, 'p');
    // 4 MiB of backlog plus whatever the kernel buffers; 12 MB is well past both.
    bool dropped = false;
    int published = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int batch = 0; batch < 120 && !dropped; ++batch) {
        dropped = loop.call([&] {
            for (int k = 0; k < 100; ++k) {
                loop.server().publish_trace({{"seq", published++}, {"pad", payload}});
            }
            return !loop.server().has_trace_subscribers();
        });
    }
    EXPECT_TRUE(dropped) << "subscriber kept after " << published << " events";
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    // The loop still serves others.
    ControlClient other(path());
    EXPECT_TRUE(other.request({{"cmd", "status"}})["ok"].get<bool>());
    // The slow client gets an in-order prefix, then EOF.
    int64_t expect = 0;
    while (auto l = slow.line()) {
        ASSERT_EQ(nlohmann::json::parse(*l)["seq"].get<int64_t>(), expect)
            << "event lost or reordered";
        ++expect;
    }
    EXPECT_GT(expect, 0);
    EXPECT_LT(expect, published);
}

TEST_F(ControlSocket, StaleSocketIsReplaced) {
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path().c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ::close(fd);  // leaves the socket file with nobody behind it
    }
    ASSERT_TRUE(std::filesystem::exists(path()));
    EXPECT_THROW(ControlClient{path()}, std::runtime_error);
    ServerLoop loop(dir.path, kIface, default_handler());
    ControlClient client(path());
    EXPECT_TRUE(client.request({{"cmd", "status"}})["ok"].get<bool>());
}

TEST_F(ControlSocket, SecondServerOnTheSamePathIsRefused) {
    ServerLoop loop(dir.path, kIface, default_handler());
    try {
        ControlServer second(dir.path, kIface, [](const ControlRequest&, ControlServer::ClientId) {
            return nlohmann::json{{"ok", true}};
        });
        FAIL() << "second server started";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "another nbagent is already running on wgtest");
    }
    // The first one is untouched.
    ControlClient client(path());
    EXPECT_TRUE(client.request({{"cmd", "status"}})["ok"].get<bool>());
}

TEST_F(ControlSocket, NonSocketAtThePathIsNotRemoved) {
    { std::ofstream(path()) << "precious"; }
    EXPECT_THROW(ServerLoop(dir.path, kIface, default_handler()), std::runtime_error);
    EXPECT_TRUE(std::filesystem::is_regular_file(path()));
}

TEST_F(ControlSocket, DestructorRemovesTheSocket) {
    { ServerLoop loop(dir.path, kIface, default_handler()); }
    EXPECT_FALSE(std::filesystem::exists(path()));
    try {
        ControlClient::find_socket(dir.path, std::nullopt);
        FAIL() << "found a socket after shutdown";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "no nbagent is running (no socket in " + dir.path + ")");
    }
}

TEST_F(ControlSocket, FindSocketWithSeveralAgentsAsksForInterface) {
    ServerLoop a(dir.path, "wga", default_handler());
    ServerLoop b(dir.path, "wgb", default_handler());
    try {
        ControlClient::find_socket(dir.path, std::nullopt);
        FAIL() << "picked one of several agents";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("wga, wgb"), std::string::npos) << msg;
        EXPECT_NE(msg.find("-i"), std::string::npos) << msg;
    }
    EXPECT_EQ(ControlClient::find_socket(dir.path, "wgb"), socket_path(dir.path, "wgb"));
    EXPECT_THROW(ControlClient::find_socket(dir.path, "wgc"), std::runtime_error);
}

TEST_F(ControlSocket, HugeStatusIsTransferredCompletely) {
    constexpr size_t kPeers = 100000;
    const AgentStatus big = big_status(kPeers);
    ServerLoop loop(dir.path, kIface,
                    [&](ControlServer&, const ControlRequest&, ControlServer::ClientId) {
                        return ControlReply::raw(status_reply_text(big));
                    });
    ControlClient client(path());
    const auto t0 = std::chrono::steady_clock::now();
    const std::string text(client.request_text({{"cmd", "status"}, {"detail", true}}));
    const auto t1 = std::chrono::steady_clock::now();
    std::printf("100k-peer status: %zu bytes in %.1f ms (request to last byte)\n", text.size(),
                std::chrono::duration<double, std::milli>(t1 - t0).count());
    const AgentStatus got = agent_status_from_json(ControlClient::check_reply(text).at("status"));
    ASSERT_EQ(got.peers.size(), kPeers);
    for (size_t i = 0; i < kPeers; ++i) {
        ASSERT_EQ(got.peers[i].public_key, big.peers[i].public_key);
        ASSERT_EQ(got.peers[i].endpoint, big.peers[i].endpoint);
        ASSERT_EQ(got.peers[i].allowed_ips, big.peers[i].allowed_ips);
        ASSERT_EQ(got.peers[i].wakes, big.peers[i].wakes);
    }
    // A second large reply on the same connection also arrives whole.
    EXPECT_EQ(client.request_text({{"cmd", "status"}}), text);
}

TEST_F(ControlSocket, LargeJsonReplyAndPipelinedRequests) {
    const std::string blob(8 * 1024 * 1024, 'b');
    ServerLoop loop(
        dir.path, kIface, [&](ControlServer&, const ControlRequest& req, ControlServer::ClientId) {
            return nlohmann::json{{"ok", true}, {"blob", blob}, {"request", to_json(req)}};
        });
    RawConn raw(path());
    raw.send_all("{\"cmd\":\"status\"}\n{\"cmd\":\"status\",\"detail\":true}\n");
    for (bool detail : {false, true}) {
        auto l = raw.line();
        ASSERT_TRUE(l);
        auto j = nlohmann::json::parse(*l);
        EXPECT_EQ(j["request"]["detail"], detail);
        EXPECT_EQ(j["blob"].get<std::string>().size(), blob.size());
    }
}

// Runs `body` as uid 65534 in a child forked before any server thread exists (so the
// child may allocate), after the parent writes to `go`. Returns the child's message.
struct UnprivilegedChild {
    pid_t pid = -1;
    int go[2]{-1, -1};
    int result[2]{-1, -1};
    explicit UnprivilegedChild(const std::function<std::string()>& body) {
        if (::pipe(go) != 0 || ::pipe(result) != 0) throw std::runtime_error("pipe");
        pid = ::fork();
        if (pid == 0) {
            ::close(go[1]);
            ::close(result[0]);
            std::string msg;
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
                msg = "setuid failed";
            } else {
                char c;
                (void)!::read(go[0], &c, 1);
                msg = body();
            }
            (void)!::write(result[1], msg.data(), msg.size());
            ::_exit(0);
        }
        ::close(go[0]);
        ::close(result[1]);
    }
    std::string run() {
        (void)!::write(go[1], "g", 1);
        ::close(go[1]);
        std::string msg;
        char buf[512];
        ssize_t n;
        while ((n = ::read(result[0], buf, sizeof buf)) > 0)
            msg.append(buf, static_cast<size_t>(n));
        ::close(result[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        return msg;
    }
};

std::string try_status(const std::string& path) {
    try {
        ControlClient client(path);
        client.request({{"cmd", "status"}});
        return "accepted";
    } catch (const std::exception& e) {
        return e.what();
    }
}

TEST_F(ControlSocket, NonRootIsRejectedByFilePermissions) {
    const std::string p = path();
    UnprivilegedChild child([p] { return try_status(p); });
    ServerLoop loop(dir.path, kIface, default_handler());
    const std::string msg = child.run();
    EXPECT_EQ(msg.rfind("permission denied: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("root-only"), std::string::npos) << msg;
}

TEST_F(ControlSocket, NonRootIsRejectedByPeerCredentials) {
    const std::string p = path();
    UnprivilegedChild child([p] { return try_status(p); });
    std::atomic<int> calls = 0;
    ServerLoop loop(dir.path, kIface, default_handler(&calls));
    // Open the file permissions up, as a careless admin might: SO_PEERCRED still refuses.
    ASSERT_EQ(::chmod(dir.path.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(p.c_str(), 0666), 0);
    const std::string msg = child.run();
    EXPECT_EQ(msg, "permission denied: the control socket is root-only");
    EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace nb

// The client's receive buffer grows by moving its mapping: what it held must stay.
TEST(MappedBuffer, GrowingKeepsTheContents) {
    nb::MappedBuffer b;
    EXPECT_EQ(b.capacity(), 0u);
    b.reserve(100);
    ASSERT_GE(b.capacity(), 100u);
    size_t filled = b.capacity();
    for (size_t i = 0; i < filled; ++i) b.data()[i] = static_cast<char>(i * 7);
    b.reserve(40 * 1024 * 1024);  // past the size that asks for huge pages
    ASSERT_GE(b.capacity(), 40u * 1024 * 1024);
    for (size_t i = 0; i < filled; ++i) ASSERT_EQ(b.data()[i], static_cast<char>(i * 7)) << i;
    b.data()[b.capacity() - 1] = 'x';  // all of it is writable
    const size_t cap = b.capacity();
    b.reserve(10);  // never shrinks
    EXPECT_EQ(b.capacity(), cap);
}
