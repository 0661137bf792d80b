// Keeps a storm of one kind of log line short: the first few lines of a kind in a window
// are logged as they come, the rest are counted and summed up in one line when the
// window ends ("312 more peers failed to connect in the last 10s: handshake_timeout").
// Single-threaded (the event loop's); time is passed in, so tests never sleep.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace nb {

class LogStorm {
  public:
    explicit LogStorm(size_t per_window = 5,
                      std::chrono::milliseconds window = std::chrono::seconds(10))
        : per_window_(per_window), window_ns_(static_cast<uint64_t>(window.count()) * 1000000) {}

    // Whether this line of `kind` is logged: true for the first per_window of a window.
    bool admit(const std::string& kind, uint64_t now_ns);
    // For each kind whose window ended with lines held back: emit(kind, held_back). Call
    // often (each tick); kinds quiet for a whole window are forgotten.
    void flush(uint64_t now_ns, const std::function<void(const std::string&, uint64_t)>& emit);
    std::chrono::milliseconds window() const {
        return std::chrono::milliseconds(window_ns_ / 1000000);
    }

  private:
    struct Window {
        uint64_t start_ns = 0;
        uint64_t logged = 0, held_back = 0;
    };
    size_t per_window_;
    uint64_t window_ns_;
    std::map<std::string, Window> kinds_;
};

}  // namespace nb
