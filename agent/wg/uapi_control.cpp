#include "agent/wg/uapi_control.hpp"

#include <charconv>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "agent/wg/uapi_exchange.hpp"
#include "base/blocking.hpp"
#include "base/errno_text.hpp"

namespace nb {

namespace {

// Shows a reply line in an error message without flooding it.
std::string quote_line(std::string_view line) {
    constexpr std::size_t kMax = 80;
    std::string out = "'";
    for (char c : line.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (line.size() > kMax) out += "...";
    return out + "'";
}

template <typename T>
bool parse_int(std::string_view s, T& out) {
    if (s.empty()) return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
    return ec == std::errc() && ptr == s.data() + s.size();
}

// errno=N carries a negated errno in wireguard-go; show the text for either sign.
// Unsigned: the negation of INT64_MIN does not fit an int64_t.
std::string describe_errno(int64_t code) {
    uint64_t mag = code < 0 ? 0 - static_cast<uint64_t>(code) : static_cast<uint64_t>(code);
    std::string text = "errno=" + std::to_string(code);
    if (mag > 0 && mag < 4096) text += " (" + errno_text(static_cast<int>(mag)) + ")";
    return text;
}

class ReplyParser {
  public:
    explicit ReplyParser(std::string_view reply) : reply_(reply) {}

    WgDevice parse() {
        if (reply_ == "\n") throw WgError("UAPI reply has no errno line");
        if (reply_.size() < 2 || reply_.substr(reply_.size() - 2) != "\n\n")
            throw WgError("UAPI reply truncated: it does not end with a blank line");
        std::string_view body = reply_.substr(0, reply_.size() - 1);  // keep last '\n'
        std::size_t pos = 0;
        bool have_errno = false;
        while (pos < body.size()) {
            std::size_t nl = body.find('\n', pos);
            std::string_view line = body.substr(pos, nl - pos);
            pos = nl + 1;
            ++line_no_;
            if (have_errno) fail(line, "data after the errno line");
            if (line.empty()) fail(line, "unexpected blank line");
            std::size_t eq = line.find('=');
            if (eq == std::string_view::npos) fail(line, "no '=' in line");
            std::string_view key = line.substr(0, eq);
            std::string_view value = line.substr(eq + 1);
            if (key == "errno") {
                int64_t code = 0;
                if (!parse_int(value, code)) fail(line, "bad errno value");
                if (code != 0) throw WgError("UAPI get failed: " + describe_errno(code));
                have_errno = true;
            } else {
                handle(line, key, value);
            }
        }
        if (!have_errno) throw WgError("UAPI reply has no errno line");
        return std::move(dev_);
    }

  private:
    [[noreturn]] void fail(std::string_view line, const std::string& why) const {
        throw WgError("UAPI reply line " + std::to_string(line_no_) + " " + quote_line(line) +
                      ": " + why);
    }

    WgKey key_value(std::string_view line, std::string_view value) const {
        auto k = WgKey::from_hex(value);
        if (!k) fail(line, "bad hex key");
        return *k;
    }

    template <typename T>
    T number(std::string_view line, std::string_view value) const {
        T v{};
        if (!parse_int(value, v)) fail(line, "bad number");
        return v;
    }

    WgPeer& peer(std::string_view line) {
        if (dev_.peers.empty()) fail(line, "peer key before any public_key");
        return dev_.peers.back();
    }

    void handle(std::string_view line, std::string_view key, std::string_view value) {
        if (key == "private_key" || key == "listen_port" || key == "fwmark") {
            // Device keys come first; after a peer they would be misattributed.
            if (!dev_.peers.empty()) fail(line, "device key after a peer");
            if (key == "private_key") {
                WgKey k = key_value(line, value);
                if (!k.is_zero()) dev_.private_key = k;
            } else if (key == "listen_port") {
                dev_.listen_port = number<uint16_t>(line, value);
            } else {
                dev_.fwmark = number<uint32_t>(line, value);
            }
        } else if (key == "public_key") {
            dev_.peers.emplace_back().public_key = key_value(line, value);
        } else if (key == "preshared_key") {
            WgKey k = key_value(line, value);
            WgPeer& p = peer(line);
            if (k.is_zero())
                p.preshared_key.reset();
            else
                p.preshared_key = k;
        } else if (key == "endpoint") {
            auto ep = SockAddr::parse_numeric(value);
            if (!ep) fail(line, "bad endpoint");
            peer(line).endpoint = *ep;
        } else if (key == "persistent_keepalive_interval") {
            peer(line).persistent_keepalive = number<uint16_t>(line, value);
        } else if (key == "allowed_ip") {
            // A dump always carries the length; a bare address would be a different
            // protocol variant we do not know.
            auto p =
                value.find('/') == std::string_view::npos ? std::nullopt : IpPrefix::parse(value);
            if (!p) fail(line, "bad allowed_ip");
            peer(line).allowed_ips.push_back(*p);
        } else if (key == "rx_bytes") {
            peer(line).rx_bytes = number<uint64_t>(line, value);
        } else if (key == "tx_bytes") {
            peer(line).tx_bytes = number<uint64_t>(line, value);
        } else if (key == "last_handshake_time_sec") {
            peer(line).last_handshake_sec = number<int64_t>(line, value);
        } else if (key.empty()) {
            fail(line, "empty key");
        }
        // Anything else (protocol_version, last_handshake_time_nsec, future keys) is
        // informational for us.
    }

    std::string_view reply_;
    std::size_t line_no_ = 0;
    WgDevice dev_;
};

std::string endpoint_text(const PeerUpdate& p) {
    const SockAddr& ep = *p.endpoint;
    if (ep.family() != AF_INET && ep.family() != AF_INET6)
        throw WgError("peer " + p.public_key.base64() + ": endpoint has no IPv4/IPv6 address");
    return ep.str();
}

class RequestBuilder {
  public:
    explicit RequestBuilder(std::size_t max_peers)
        : max_peers_(max_peers), max_ips_(max_peers * 4) {}

    std::vector<std::string> build(const DeviceUpdate& u) {
        start();
        if (u.private_key) cur_ += "private_key=" + u.private_key->hex() + "\n";
        if (u.listen_port) cur_ += "listen_port=" + std::to_string(*u.listen_port) + "\n";
        if (u.fwmark) cur_ += "fwmark=" + std::to_string(*u.fwmark) + "\n";
        if (u.replace_peers) cur_ += "replace_peers=true\n";
        for (const PeerUpdate& p : u.peers) add_peer(p);
        finish();
        return std::move(out_);
    }

  private:
    void start() {
        cur_ = "set=1\n";
        peers_ = 0;
        ips_ = 0;
    }
    void finish() {
        cur_ += "\n";
        out_.push_back(std::move(cur_));
    }
    void next_request() {
        finish();
        start();
    }

    void add_peer(const PeerUpdate& p) {
        if (peers_ >= max_peers_ || ips_ >= max_ips_) next_request();
        ++peers_;
        const std::string key_line = "public_key=" + p.public_key.hex() + "\n";
        cur_ += key_line;
        if (p.remove) cur_ += "remove=true\n";
        if (p.update_only) cur_ += "update_only=true\n";
        if (p.preshared_key) cur_ += "preshared_key=" + p.preshared_key->hex() + "\n";
        if (p.endpoint) cur_ += "endpoint=" + endpoint_text(p) + "\n";
        if (p.persistent_keepalive)
            cur_ +=
                "persistent_keepalive_interval=" + std::to_string(*p.persistent_keepalive) + "\n";
        if (p.replace_allowed_ips) cur_ += "replace_allowed_ips=true\n";
        for (const IpPrefix& ip : p.allowed_ips) {
            if (ips_ >= max_ips_) {
                // The peer exists by now (or was removed, which update_only respects), so
                // the rest of its allowed IPs go to the same peer in the next request.
                next_request();
                ++peers_;
                cur_ += key_line + "update_only=true\n";
            }
            cur_ += "allowed_ip=" + ip.str() + "\n";
            ++ips_;
        }
    }

    std::size_t max_peers_;
    std::size_t max_ips_;
    std::string cur_;
    std::size_t peers_ = 0;
    std::size_t ips_ = 0;
    std::vector<std::string> out_;
};

}  // namespace

WgDevice parse_uapi_get_reply(std::string_view reply) {
    return ReplyParser(reply).parse();
}

std::vector<std::string> build_uapi_set_requests(const DeviceUpdate& update,
                                                 std::size_t max_peers) {
    return RequestBuilder(max_peers == 0 ? 1 : max_peers).build(update);
}

UapiControl::UapiControl(std::string interface, std::string socket_dir)
    : interface_(std::move(interface)), path_(socket_dir + "/" + interface_ + ".sock") {}

std::string UapiControl::transact(std::string_view request) const {
    const std::string where = "wireguard-go UAPI socket " + path_;
    std::unique_ptr<UapiExchange> ex;
    UapiExchange::State state;
    {
        // Connect (a full backlog waits), then send and poll for the whole reply.
        BlockingTimer waiting(BlockingKind::WgUapi);
        try {
            ex = std::make_unique<UapiExchange>(path_, std::string(request), timeout_);
        } catch (const WgError& e) {
            throw WgError(where + ": " + e.what(), e.fault);
        }
        state = ex->run(timeout_);
    }
    switch (state) {
        case UapiExchange::State::Done:
            return ex->take_reply();
        case UapiExchange::State::Failed:
            throw WgError(where + ": " + ex->error(), ex->fault());
        case UapiExchange::State::Pending:
            break;
    }
    const std::string timeout_text = std::to_string(timeout_.count()) + " ms";
    std::string why = ex->sent_all() ? ": no complete reply within " + timeout_text
                                     : ": daemon stopped reading for " + timeout_text;
    // Not closed: wireguard-go may still apply it (see UapiExchange).
    if (parking_) parking_(std::move(ex));
    throw WgError(where + why, WgFault::NoAnswer);
}

WgDevice UapiControl::get_device() {
    std::string reply = transact("get=1\n\n");
    try {
        return parse_uapi_get_reply(reply);
    } catch (const WgError& e) {
        throw WgError("wireguard-go " + interface_ + ": " + e.what());
    }
}

void UapiControl::set_device(const DeviceUpdate& update) {
    std::vector<std::string> requests = build_uapi_set_requests(update, max_peers_);
    for (std::size_t i = 0; i < requests.size(); ++i) {
        std::string reply = transact(requests[i]);
        const std::string part = requests.size() > 1
                                     ? " (request " + std::to_string(i + 1) + " of " +
                                           std::to_string(requests.size()) +
                                           (i > 0 ? ", earlier ones applied)" : ")")
                                     : "";
        int64_t code = 0;
        try {
            code = uapi_set_reply_errno(reply);
        } catch (const WgError& e) {
            throw WgError("wireguard-go " + interface_ + ": " + e.what() + part);
        }
        if (code != 0)
            throw WgError("wireguard-go " + interface_ +
                          ": UAPI set failed: " + describe_errno(code) + part);
    }
}

}  // namespace nb
