// One agent per interface and network namespace (agent/engine/instance_lock.hpp): the
// lock is exclusive across open files, names its holder, dies with it, and is per
// namespace.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "agent/engine/instance_lock.hpp"
#include "tests/support/privileged.hpp"

namespace nb::engine {
namespace {

class InstanceLockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = (std::filesystem::temp_directory_path() /
                 ("nb-lock-" + std::to_string(::getpid()) + "-" +
                  testing::UnitTest::GetInstance()->current_test_info()->name()))
                    .string();
    }
    void TearDown() override { std::filesystem::remove_all(root_); }
    std::string error_of(const std::string& iface) {
        try {
            InstanceLock::acquire(iface, root_);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "(acquired)";
    }
    std::string root_;
};

TEST_F(InstanceLockTest, SecondHolderIsRefusedByNameAndPid) {
    std::optional<InstanceLock> first = InstanceLock::acquire("wg0", root_);
    EXPECT_EQ(first->path(), root_ + "/" + netns_id() + "/wg0.lock");
    std::string pid;
    std::ifstream(first->path()) >> pid;
    EXPECT_EQ(pid, std::to_string(::getpid()));
    EXPECT_EQ(error_of("wg0"),
              "another nbagent is already running on wg0 in this network "
              "namespace (pid " +
                  pid + "; lock " + first->path() + ")");
    EXPECT_EQ(error_of("wg1"), "(acquired)") << "another interface is another lock";
    first.reset();  // the holder ends: the next one gets it
    EXPECT_EQ(error_of("wg0"), "(acquired)");
}

TEST_F(InstanceLockTest, AHolderThatDiesLeavesNothingBehind) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        InstanceLock l = InstanceLock::acquire("wg0", root_);
        ::_exit(0);  // no destructor: as a crash
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(error_of("wg0"), "(acquired)");
}

TEST_F(InstanceLockTest, NamesThatWouldLeaveTheDirectoryAreRefused) {
    for (const char* bad : {"", "..", ".", "a/b", "../etc", "sixteen-chars-xx"})
        EXPECT_NE(error_of(bad).find("is not an interface name"), std::string::npos) << bad;
}

TEST_F(InstanceLockTest, AnotherNetworkNamespaceHasItsOwnLock) {
    NB_REQUIRE_ROOT();  // unshare(CLONE_NEWNET)
    std::optional<InstanceLock> here = InstanceLock::acquire("wg0", root_);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::unshare(CLONE_NEWNET) != 0) ::_exit(2);
        try {
            InstanceLock there = InstanceLock::acquire("wg0", root_);
            ::_exit(there.path() != here->path() ? 0 : 3);
        } catch (...) {
            ::_exit(1);
        }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: refused; 2: unshare failed; 3: same path";
}

}  // namespace
}  // namespace nb::engine
