#include "agent/etcd/etcd_options.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace nb {

std::string EtcdEndpoint::url() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

namespace {

[[noreturn]] void bad_endpoint(const std::string& url, const std::string& why) {
    throw std::invalid_argument("etcd endpoint '" + url + "': " + why +
                                " (expected http://HOST:PORT or https://HOST:PORT)");
}

uint16_t parse_port(const std::string& url, const std::string& port) {
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos)
        bad_endpoint(url, "'" + port + "' is not a port");
    const unsigned long n = std::stoul(port);
    if (n == 0 || n > 65535) bad_endpoint(url, "port " + port + " is out of range (1-65535)");
    return static_cast<uint16_t>(n);
}

}  // namespace

EtcdEndpoint parse_etcd_endpoint(const std::string& url) {
    EtcdEndpoint e;
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        e.tls = true;
        rest = url.substr(8);
    } else {
        bad_endpoint(url, "the scheme must be http or https");
    }
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.find('/') != std::string::npos) bad_endpoint(url, "a path is not allowed");
    if (rest.find_first_of("@?# \t") != std::string::npos)
        bad_endpoint(url, "user info, a query or blanks are not allowed");
    size_t colon;
    if (!rest.empty() && rest.front() == '[') {
        const size_t close = rest.find(']');
        if (close == std::string::npos) bad_endpoint(url, "'[' without ']'");
        e.host = rest.substr(1, close - 1);
        if (close + 1 >= rest.size() || rest[close + 1] != ':') bad_endpoint(url, "no port");
        colon = close + 1;
    } else {
        colon = rest.find(':');
        if (colon == std::string::npos) bad_endpoint(url, "no port");
        if (rest.find(':', colon + 1) != std::string::npos)
            bad_endpoint(url, "an IPv6 address goes in brackets");
        e.host = rest.substr(0, colon);
    }
    if (e.host.empty()) bad_endpoint(url, "no host");
    e.port = parse_port(url, rest.substr(colon + 1));
    return e;
}

namespace {

void check_readable(const char* what, const std::string& path) {
    if (::access(path.c_str(), R_OK) != 0)
        throw std::invalid_argument(std::string("etcd ") + what + " '" + path +
                                    "': " + std::strerror(errno));
}

}  // namespace

std::vector<EtcdEndpoint> validate_etcd_options(const EtcdOptions& o) {
    if (o.endpoints.empty()) throw std::invalid_argument("etcd: no endpoint given");
    std::vector<EtcdEndpoint> out;
    for (const std::string& url : o.endpoints) out.push_back(parse_etcd_endpoint(url));
    if (o.cert_file.empty() != o.key_file.empty())
        throw std::invalid_argument(
            "etcd: a client certificate needs its key and a key its certificate "
            "(cert file and key file go together)");
    if (!o.ca_file.empty()) check_readable("CA file", o.ca_file);
    if (!o.cert_file.empty()) check_readable("client certificate file", o.cert_file);
    if (!o.key_file.empty()) check_readable("client key file", o.key_file);
    if (o.request_timeout.count() <= 0)
        throw std::invalid_argument("etcd: the request timeout must be above zero");
    if (o.dial_timeout.count() <= 0)
        throw std::invalid_argument("etcd: the dial timeout must be above zero");
    return out;
}

}  // namespace nb
