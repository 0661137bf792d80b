// The CLI's end of the control socket (protocol in agent/control/protocol.hpp). Blocking.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/mapped_buffer.hpp"

namespace nb {

class ControlClient {
  public:
    // The socket of `interface`, or, without one, the only *.sock in run_dir. Throws
    // std::runtime_error when there is none or several (asking for -i).
    static std::string find_socket(const std::string& run_dir,
                                   const std::optional<std::string>& interface);

    explicit ControlClient(const std::string& path);
    ~ControlClient();
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;

    // Sends one request, returns the reply; throws std::runtime_error with the agent's
    // error text on {"ok":false}.
    nlohmann::json request(const nlohmann::json& req);
    // Sends one request and returns the reply line unparsed (for forwarding large
    // replies verbatim); the caller checks "ok". Valid until the next call on this client.
    std::string_view request_text(const nlohmann::json& req);
    // Sends `req`, checks the first reply and hands it to on_subscribed, then calls
    // on_event for each following line until it returns false. Throws if the agent closes
    // the connection.
    void stream(const nlohmann::json& req,
                const std::function<bool(const nlohmann::json&)>& on_event,
                const std::function<void(const nlohmann::json& reply)>& on_subscribed = {});

    // Parses a reply line; throws std::runtime_error with the agent's error text on
    // {"ok":false} and on anything that is not a reply.
    static nlohmann::json check_reply(std::string_view line);

  private:
    void send_line(const std::string& line);
    // The next line, without its newline; valid until the next read.
    std::string_view read_line();

    std::string path_;
    int fd_ = -1;
    MappedBuffer buf_;  // the first len_ bytes are received
    size_t len_ = 0;
    size_t consumed_ = 0;  // prefix returned already (dropped at the next read)
    size_t scanned_ = 0;   // prefix of those known to hold no newline
};

}  // namespace nb
