// cpp-httplib clients for one etcd member, shared by the request path and the watch
// stream. Internal to agent/etcd: only its .cpp files include it (the library links
// cpp-httplib privately, so httplib.h and its compile definitions stay in here).
#pragma once

#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>

#include "agent/etcd/etcd_options.hpp"

namespace nb::etcd {

// A client for `e`, with the TLS files of `o` for an https endpoint. Throws
// std::invalid_argument when the client certificate or key cannot be loaded.
std::unique_ptr<httplib::Client> make_http_client(const EtcdEndpoint& e, const EtcdOptions& o);

// What went wrong with a request to `e` that got no reply, in words ("connection refused
// or unreachable", "timed out reading the reply", "TLS handshake failed", ...).
std::string transport_error_text(httplib::Error err, const EtcdEndpoint& e, const EtcdOptions& o);

// httplib's timeouts take seconds and microseconds.
template <class Set>
void set_timeout(Set&& set, std::chrono::milliseconds d) {
    if (d.count() < 1) d = std::chrono::milliseconds(1);
    set(static_cast<time_t>(d.count() / 1000), static_cast<time_t>((d.count() % 1000) * 1000));
}

}  // namespace nb::etcd
