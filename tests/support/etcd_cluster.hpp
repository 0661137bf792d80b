// Real etcd members for tests: a cluster of N on free loopback ports in a temporary
// directory, each member killed (SIGKILL) and started again at will; and a throwaway CA
// with server and client certificates made with the openssl command, for TLS. Tests call
// NB_REQUIRE_ETCD() first: without the etcd binary they skip with the reason, or fail
// where skips are failures (CI=true).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/etcd/etcd_options.hpp"
#include "tests/support/privileged.hpp"

extern char** environ;

namespace nb::test {

// The etcd binary, or "" when there is none on PATH.
inline std::string etcd_binary() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string d; std::getline(dirs, d, ':');)
        if (!d.empty() && ::access((d + "/etcd").c_str(), X_OK) == 0) return d + "/etcd";
    return {};
}

#define NB_REQUIRE_ETCD()                                                                     \
    NB_SKIP_UNLESS(::nb::test::etcd_binary().empty()                                          \
                       ? std::string("no etcd on PATH (Debian: apt-get install etcd-server)") \
                       : std::string())

// `n` distinct free TCP ports on 127.0.0.1 (held open together, so none repeats).
inline std::vector<uint16_t> free_ports(size_t n) {
    std::vector<int> fds;
    std::vector<uint16_t> ports;
    for (size_t i = 0; i < n; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("free_ports: cannot bind a loopback socket");
        fds.push_back(fd);
        ports.push_back(ntohs(a.sin_port));
    }
    for (int fd : fds) ::close(fd);
    return ports;
}

inline std::string make_temp_dir(const char* name) {
    std::string tmpl = (std::filesystem::temp_directory_path() / name).string() + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

// A CA, a certificate for the members (127.0.0.1, server and client use: the gateway
// inside a member dials the member with it) and one for the client, in `dir`.
struct TestPki {
    std::string ca, server_cert, server_key, client_cert, client_key;
};

inline TestPki make_test_pki(const std::string& dir) {
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto run = [&](const std::string& cmd) {
        if (std::system(("cd '" + dir + "' && " + cmd + " >>openssl.log 2>&1").c_str()) != 0)
            throw std::runtime_error("openssl failed (see " + dir + "/openssl.log): " + cmd);
    };
    run("openssl req -x509" + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=nb-test-ca");
    auto issue = [&](const std::string& name, const std::string& cn, const std::string& ext) {
        std::ofstream(dir + "/" + name + ".ext") << ext;
        run("openssl req" + ec + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + cn);
        run("openssl x509 -req -in " + name +
            ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " + name +
            ".pem -days 2 -extfile " + name + ".ext");
    };
    issue("server", "127.0.0.1",
          "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
    issue("client", "nb-test-client", "extendedKeyUsage=clientAuth\n");
    return {dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/client.pem",
            dir + "/client.key"};
}

// A client's options for `endpoints`, with a request timeout long enough for members
// that are starting (or short, where a test wants failures to come quickly).
inline EtcdOptions etcd_options(std::vector<std::string> endpoints,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    EtcdOptions o;
    o.endpoints = std::move(endpoints);
    o.request_timeout = timeout;
    return o;
}

class EtcdCluster {
  public:
    // Starts `n` members and waits until each serves clients. With `pki`, clients speak
    // TLS and must show a certificate of its CA.
    explicit EtcdCluster(size_t n, const TestPki* pki = nullptr)
        : dir_(make_temp_dir("nb-etcd")), pki_(pki ? *pki : TestPki{}), tls_(pki != nullptr) {
        ::signal(SIGPIPE, SIG_IGN);  // as the agent does (EtcdClient needs it with TLS)
        const std::vector<uint16_t> ports = free_ports(2 * n);
        for (size_t i = 0; i < n; ++i) members_.push_back({ports[2 * i], ports[2 * i + 1]});
        for (size_t i = 0; i < n; ++i) start(i);
        for (size_t i = 0; i < n; ++i) wait_ready(i);
    }
    ~EtcdCluster() {
        for (size_t i = 0; i < members_.size(); ++i) kill(i);
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    EtcdCluster(const EtcdCluster&) = delete;
    EtcdCluster& operator=(const EtcdCluster&) = delete;

    std::string endpoint(size_t i) const {
        return std::string(tls_ ? "https" : "http") +
               "://127.0.0.1:" + std::to_string(members_[i].client_port);
    }
    std::vector<std::string> endpoints() const {
        std::vector<std::string> out;
        for (size_t i = 0; i < members_.size(); ++i) out.push_back(endpoint(i));
        return out;
    }
    const std::string& dir() const { return dir_; }

    void kill(size_t i) {
        Member& m = members_[i];
        if (m.pid <= 0) return;
        ::kill(m.pid, SIGKILL);
        ::waitpid(m.pid, nullptr, 0);
        m.pid = -1;
    }
    // Starts member i (again: its data directory is kept, so it rejoins); wait_ready()
    // waits for it, which needs a quorum of the members up.
    void start(size_t i) {
        Member& m = members_[i];
        const std::string log = dir_ + "/m" + std::to_string(i) + ".log";
        m.log_offset = std::filesystem::exists(log) ? std::filesystem::file_size(log) : 0;
        std::vector<std::string> args = member_args(i);
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        const int rc = ::posix_spawn(&m.pid, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::runtime_error("cannot start etcd: " + std::string(strerror(rc)));
    }
    // Until member i logs that it serves clients; throws with its log after 60 s.
    void wait_ready(size_t i) {
        const std::string log = dir_ + "/m" + std::to_string(i) + ".log";
        for (int t = 0; t < 6000; ++t) {
            if (log_since_start(i).find("ready to serve client requests") != std::string::npos)
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("etcd member " + std::to_string(i) + " not ready; its log:\n" +
                                 log_since_start(i));
    }

  private:
    struct Member {
        uint16_t client_port = 0;
        uint16_t peer_port = 0;
        pid_t pid = -1;
        uintmax_t log_offset = 0;
    };

    std::string peer_url(size_t i) const {
        return "http://127.0.0.1:" + std::to_string(members_[i].peer_port);
    }
    std::string log_since_start(size_t i) const {
        std::ifstream f(dir_ + "/m" + std::to_string(i) + ".log");
        f.seekg(static_cast<std::streamoff>(members_[i].log_offset));
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    std::vector<std::string> member_args(size_t i) const {
        std::string cluster;
        for (size_t k = 0; k < members_.size(); ++k)
            cluster += (k ? "," : "") + ("m" + std::to_string(k)) + "=" + peer_url(k);
        std::vector<std::string> a = {etcd_binary(),
                                      "--name=m" + std::to_string(i),
                                      "--data-dir=" + dir_ + "/m" + std::to_string(i) + ".data",
                                      "--listen-client-urls=" + endpoint(i),
                                      "--advertise-client-urls=" + endpoint(i),
                                      "--listen-peer-urls=" + peer_url(i),
                                      "--initial-advertise-peer-urls=" + peer_url(i),
                                      "--initial-cluster=" + cluster,
                                      "--initial-cluster-state=new",
                                      "--initial-cluster-token=nb-test",
                                      "--heartbeat-interval=50",
                                      "--election-timeout=500"};
        if (tls_) {
            a.insert(a.end(), {"--cert-file=" + pki_.server_cert, "--key-file=" + pki_.server_key,
                               "--trusted-ca-file=" + pki_.ca, "--client-cert-auth"});
        }
        return a;
    }

    std::string dir_;
    TestPki pki_;
    bool tls_;
    std::vector<Member> members_;
};

}  // namespace nb::test
