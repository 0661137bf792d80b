// Attaching tc programs to a device: tcx links where the kernel has them, legacy
// clsact + cls_bpf (direct action) below. Only our own filters are ever removed.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "base/enum_names.hpp"

namespace nb {

struct TcOrder;

struct AttachError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --attach, and the hook a program runs on (status `attach_mode`, a program ahead's
// `hook`): Auto is only a choice, an attachment is always on tcx or clsact.
enum class AttachMode { Auto, Tcx, Clsact };
inline constexpr EnumName<AttachMode> kAttachModeNames[] = {
    {AttachMode::Auto, "auto"},
    {AttachMode::Tcx, "tcx"},
    {AttachMode::Clsact, "clsact"},
};
constexpr const auto& enum_names(AttachMode) {
    return kAttachModeNames;
}

// One attached (ingress, egress) pair, first in the device's chains: tcx links go before
// every other tcx program, clsact filters at priority 1. Detaches in the destructor.
class TcAttachment {
  public:
    // Auto tries tcx first and falls back to clsact when the kernel refuses the
    // tcx link type (probing, not version strings).
    TcAttachment(int ifindex, int ingress_fd, int egress_fd, AttachMode mode);
    ~TcAttachment();
    TcAttachment(const TcAttachment&) = delete;
    TcAttachment& operator=(const TcAttachment&) = delete;

    AttachMode mode() const { return mode_; }
    void detach();
    // Who runs before our programs now (others can attach ahead of us later).
    TcOrder order() const;

  private:
    void attach_tcx(int ingress_fd, int egress_fd);
    void attach_clsact(int ingress_fd, int egress_fd);
    bool foreign_filter_first(bool ingress) const;

    int ifindex_;
    AttachMode mode_;
    uint32_t ingress_id_, egress_id_;  // our programs' kernel ids
    int ingress_link_ = -1;
    int egress_link_ = -1;
    bool clsact_attached_ = false;
    bool created_clsact_ = false;
};

// Removes filters a previous agent instance left on the device with clsact (e.g.
// after kill -9); tcx links die with their process. Returns how many it removed.
int remove_stale_clsact_filters(int ifindex);

}  // namespace nb
