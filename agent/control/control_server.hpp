// The agent's end of the control socket (protocol in agent/control/protocol.hpp).
//
// Runs inside an epoll loop owned by someone else; everything is non-blocking and
// single-threaded (call every method from the loop's thread). Use:
//
//   ControlServer server(run_dir, iface, handler);
//   server.register_with(epfd);            // adds its fds with epoll_event.data.fd = fd
//   ... epoll_wait(epfd, evs, ...);
//   for (auto& ev : evs)
//       if (server.owns(ev.data.fd)) server.handle_event(ev.data.fd, ev.events);
//
// The server adds and removes client fds on `epfd` itself as clients come and go.
// Requests are handled in order per client; while a client still has reply bytes to
// receive, further requests from it wait (so a client that never reads cannot make the
// agent buffer unbounded replies). Trace subscribers have a bounded buffer instead and
// are dropped when it overflows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "agent/control/request.hpp"

namespace nb {

// A handler's reply: a JSON object, or the text of one already serialized (for replies
// too large to build as a DOM, e.g. ControlReply::raw(status_reply_text(status))).
class ControlReply {
  public:
    ControlReply(nlohmann::json j) : json_(std::move(j)) {}  // NOLINT: implicit by design
    static ControlReply raw(std::string serialized_object) {
        ControlReply r(nlohmann::json{});
        r.raw_ = std::move(serialized_object);
        return r;
    }
    // The reply line without the trailing newline.
    std::string take_text() &&;

  private:
    nlohmann::json json_;
    std::optional<std::string> raw_;
};

class ControlServer {
  public:
    using ClientId = uint64_t;
    // Called for each request line that parses as a ControlRequest (agent/control/
    // request.hpp); any other line is answered with the parse error. A thrown exception
    // becomes {"ok":false,"error":what()}.
    using Handler = std::function<ControlReply(const ControlRequest& request, ClientId client)>;

    // Every request but `apply` is small (may_be_long); a line longer than this is refused
    // before it is parsed, so a client cannot stall the others with a huge status request.
    static constexpr size_t kMaxRequestLine = 64 * 1024;
    // A whole network map may come as one `apply` request (~200 bytes a peer; a million
    // peers, JSON-escaped). A line may only grow past kMaxRequestLine when it starts
    // with {"cmd":"apply" (nlohmann and jq both write "cmd" first: keys sort that way).
    static constexpr size_t kMaxApplyLine = 320 * 1024 * 1024;
    static constexpr size_t kMaxTraceBacklog = 4 * 1024 * 1024;

    // Creates run_dir (0700) if needed, replaces a stale socket, binds <run_dir>/<iface>.sock
    // (0600) and listens. Throws std::runtime_error, e.g. when another agent answers on
    // the socket ("another nbagent is already running on <iface>").
    ControlServer(std::string run_dir, std::string interface, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    void register_with(int epoll_fd);
    bool owns(int fd) const { return fd == listen_fd_ || fd_to_client_.count(fd) != 0; }
    void handle_event(int fd, uint32_t events);

    // From inside the handler: once this request's reply is queued, `client` receives
    // every trace event published from then on, one JSON object per line (events
    // published while the handler runs are not sent to it).
    void subscribe_trace(ClientId client);
    bool has_trace_subscribers() const { return subscribers_ != 0; }
    void publish_trace(const nlohmann::json& event);

    int fd() const { return listen_fd_; }
    const std::string& path() const { return path_; }
    size_t client_count() const { return clients_.size(); }
    // Lower the request size limits (tests; the defaults are the constants above).
    void set_max_request_line(size_t n) { max_request_line_ = n; }
    void set_max_apply_line(size_t n) { max_apply_line_ = n; }

  private:
    size_t max_request_line_ = kMaxRequestLine;
    size_t max_apply_line_ = kMaxApplyLine;
    struct Client {
        int fd = -1;
        std::string in;
        size_t in_scanned = 0;  // bytes of `in` known to hold no newline
        std::string out;
        size_t out_off = 0;     // bytes of `out` already written
        bool want_out = false;  // EPOLLOUT currently requested
        bool subscribed = false;
        bool subscribe_after_reply = false;
        bool closing = false;  // close once `out` is flushed; read nothing more
        bool peer_eof = false;
    };

    void accept_clients();
    void on_readable(ClientId id);
    void process_lines(ClientId id);
    std::string handle_line(std::string_view line, ClientId id);
    void queue(Client& c, std::string text);
    // Returns false if the client was closed.
    bool flush(ClientId id);
    void update_interest(Client& c);
    void close_client(ClientId id);

    std::string run_dir_;
    std::string interface_;
    std::string path_;
    Handler handler_;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    ClientId next_id_ = 1;
    size_t subscribers_ = 0;
    std::unordered_map<ClientId, Client> clients_;
    std::unordered_map<int, ClientId> fd_to_client_;
};

}  // namespace nb
