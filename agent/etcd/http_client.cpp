#include "agent/etcd/http_client.hpp"

#include <stdexcept>

namespace nb::etcd {

std::unique_ptr<httplib::Client> make_http_client(const EtcdEndpoint& e, const EtcdOptions& o) {
    std::unique_ptr<httplib::Client> c;
    if (e.tls && !o.cert_file.empty())
        c = std::make_unique<httplib::Client>(e.url(), o.cert_file, o.key_file);
    else
        c = std::make_unique<httplib::Client>(e.url());
    if (!c->is_valid())
        throw std::invalid_argument(
            "etcd " + e.url() + ": cannot set up TLS with the client certificate '" + o.cert_file +
            "' and key '" + o.key_file + "' (not PEM, or the key does not match)");
    if (e.tls) {
        if (!o.ca_file.empty()) c->set_ca_cert_path(o.ca_file);
        c->enable_server_certificate_verification(true);
    }
    c->set_keep_alive(true);
    set_timeout([&](time_t s, time_t us) { c->set_connection_timeout(s, us); }, o.dial_timeout);
    return c;
}

namespace {

std::string error_words(httplib::Error err) {
    switch (err) {
        case httplib::Error::Connection:
            return "connection refused or unreachable";
        case httplib::Error::ConnectionTimeout:
            return "timed out connecting";
        case httplib::Error::Read:
            return "connection lost or timed out reading the reply";
        case httplib::Error::Write:
            return "connection lost sending the request";
        case httplib::Error::Canceled:
            return "canceled";
        case httplib::Error::SSLConnection:
            return "TLS handshake failed (a client certificate missing or refused?)";
        case httplib::Error::SSLLoadingCerts:
            return "cannot load the CA file";
        case httplib::Error::SSLServerVerification:
            return "the member's certificate is not trusted (CA file, or name/address "
                   "not in its certificate)";
        default:
            return "HTTP error: " + httplib::to_string(err);
    }
}

}  // namespace

std::string transport_error_text(httplib::Error err, const EtcdEndpoint& e, const EtcdOptions& o) {
    std::string text = error_words(err);
    // With TLS 1.3 a member that wants a client certificate refuses it after the
    // handshake, so it looks like a lost connection.
    if (e.tls && o.cert_file.empty() &&
        (err == httplib::Error::Read || err == httplib::Error::Write ||
         err == httplib::Error::SSLConnection))
        text +=
            "; no client certificate is configured: does the member ask for one "
            "(--client-cert-auth)?";
    return text;
}

}  // namespace nb::etcd
