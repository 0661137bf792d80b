// Where the etcd members are and how to talk to them: endpoint URLs, TLS files, timeouts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace nb {

struct EtcdEndpoint {
    bool tls = false;  // https
    std::string host;  // a name or an address; an IPv6 address without brackets
    uint16_t port = 0;
    std::string url() const;  // "http://127.0.0.1:2379", "https://[::1]:2379"
    bool operator==(const EtcdEndpoint&) const = default;
};

// "http://HOST:PORT" or "https://HOST:PORT" (an IPv6 address in brackets; a trailing '/'
// is allowed, a path is not). Throws std::invalid_argument naming the URL.
EtcdEndpoint parse_etcd_endpoint(const std::string& url);

struct EtcdOptions {
    std::vector<std::string> endpoints;  // one URL per member; requests go to one at a time
    // TLS (https endpoints): the CA that signed the members' certificates (empty: the
    // system's), and this client's certificate and key for members that ask for one
    // (--client-cert-auth). Both or neither.
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    // A whole request, failing over included. (A watch's stream has none: it lasts; see
    // EtcdWatchTiming::idle_timeout.)
    std::chrono::milliseconds request_timeout{5000};
    // One TCP (and TLS) connection to one member.
    std::chrono::milliseconds dial_timeout{2000};
};

// The endpoints parsed, after checking the options: at least one endpoint, the TLS files
// readable, cert and key together, timeouts above zero. Throws std::invalid_argument
// naming the bad endpoint, file or option.
std::vector<EtcdEndpoint> validate_etcd_options(const EtcdOptions& o);

}  // namespace nb
