// DeviceReader's hand-over between its thread and the loop, with an in-test WgControl
// (the real dumps run in the kernel matrix, where every handshake poll goes through it).
#include "agent/wg/device_reader.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <future>

namespace nb {
namespace {

class GatedWg : public WgControl {
  public:
    GatedWg(std::shared_future<void> gate, std::atomic<int>& calls, bool fail)
        : gate_(std::move(gate)), calls_(calls), fail_(fail) {}
    WgBackend backend() const override { return WgBackend::Kernel; }
    WgDevice get_device() override {
        ++calls_;
        gate_.wait();
        if (fail_) throw WgError("no such device");
        WgDevice d;
        d.peers.emplace_back();
        d.peers.back().last_handshake_sec = 42;
        return d;
    }
    void set_device(const DeviceUpdate&) override {}

  private:
    std::shared_future<void> gate_;
    std::atomic<int>& calls_;
    bool fail_;
};

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(DeviceReader, OneReadAtATimeAndItsResultComesThroughTheEventFd) {
    std::promise<void> open;
    std::shared_future<void> gate = open.get_future().share();
    std::atomic<int> calls{0}, opened{0};
    DeviceReader reader([&] {
        ++opened;
        return std::make_unique<GatedWg>(gate, calls, false);
    });
    EXPECT_FALSE(reader.take());
    ASSERT_TRUE(reader.start());
    EXPECT_FALSE(reader.start());  // the first is still running
    EXPECT_FALSE(readable(reader.event_fd(), 50));
    open.set_value();
    ASSERT_TRUE(readable(reader.event_fd(), 5000));
    EXPECT_FALSE(reader.start());  // done, but its result is not taken yet
    auto r = reader.take();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->device);
    ASSERT_EQ(r->device->peers.size(), 1u);
    EXPECT_EQ(r->device->peers[0].last_handshake_sec, 42);
    EXPECT_FALSE(readable(reader.event_fd(), 0));
    ASSERT_TRUE(reader.start());
    ASSERT_TRUE(readable(reader.event_fd(), 5000));
    ASSERT_TRUE(reader.take());
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(opened.load(), 1);  // one connection kept
}

TEST(DeviceReader, AFailedReadSaysWhyAndTheNextOneConnectsAgain) {
    std::promise<void> open;
    open.set_value();
    std::shared_future<void> gate = open.get_future().share();
    std::atomic<int> calls{0}, opened{0};
    DeviceReader reader([&] {
        ++opened;
        return std::make_unique<GatedWg>(gate, calls, true);
    });
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(reader.start());
        ASSERT_TRUE(readable(reader.event_fd(), 5000));
        auto r = reader.take();
        ASSERT_TRUE(r);
        EXPECT_FALSE(r->device);
        EXPECT_EQ(r->error, "no such device");
    }
    EXPECT_EQ(opened.load(), 2);
}

TEST(DeviceReader, StopsWhileIdle) {
    std::atomic<int> calls{0};
    {
        DeviceReader reader([&] { return std::unique_ptr<WgControl>(); });
    }
    EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace nb
