// One UAPI transaction with wireguard-go (a request, then the reply up to the blank line
// that ends it) on its own connection, driven a bounded while at a time.
//
// Why a transaction is an object: a caller that stops waiting must not simply close it.
// wireguard-go reads requests from the socket buffer whenever it gets to them, so a
// stopped daemon applies a request we gave up on once it resumes, and a partly sent set
// line by line up to where it ends (a `remove` without its re-add). Whoever keeps the
// object can drive it to its end and learn what happened (WgHealth does, off the loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/wg/wg_control.hpp"
#include "base/unique_fd.hpp"

namespace nb {

class UapiExchange {
  public:
    enum class State { Pending, Done, Failed };

    // Connects, waiting at most `connect_timeout` (a full listen backlog). Throws WgError
    // with the bare reason (the caller names the socket): Gone when there is no socket
    // or nobody listens on it, NoAnswer when the backlog stays full.
    UapiExchange(const std::string& socket_path, std::string request,
                 std::chrono::milliseconds connect_timeout);

    // Sends and reads until the reply is complete or the exchange failed, or until
    // nothing moved for `idle` (then Pending: call again to go on).
    State run(std::chrono::milliseconds idle);

    State state() const { return state_; }
    bool sent_all() const { return off_ == request_.size(); }
    const std::string& reply() const { return reply_; }  // Done: all of it
    std::string take_reply() { return std::move(reply_); }
    const std::string& error() const { return error_; }  // Failed: why, without the socket
    WgFault fault() const { return fault_; }             // Failed
    std::string_view request() const { return request_; }
    uint64_t started_ns() const { return started_ns_; }  // CLOCK_MONOTONIC

  private:
    void fail(std::string why, WgFault fault = WgFault::Rejected);
    // Takes what arrived; true once the exchange is no longer pending.
    bool receive();

    UniqueFd fd_;
    std::string request_;
    std::size_t off_ = 0;
    int send_error_ = 0;  // the daemon closed on us mid-request: its reply says why
    std::string reply_;
    std::string error_;
    WgFault fault_ = WgFault::Rejected;
    State state_ = State::Pending;
    uint64_t started_ns_ = 0;
};

// The errno of a complete set=1 reply ("errno=N\n\n"); throws WgError for anything else.
int64_t uapi_set_reply_errno(std::string_view reply);

}  // namespace nb
