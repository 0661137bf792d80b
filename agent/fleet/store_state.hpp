// How the fleet's store answers, as status and metrics show it.
#pragma once

#include "base/enum_names.hpp"

namespace nb {

// connecting: no answer yet since the start; up: a range read or a watch stream works;
// down: every member failed in a row (wakes use the endpoints already known).
enum class StoreState { Connecting, Up, Down };
inline constexpr EnumName<StoreState> kStoreStateNames[] = {
    {StoreState::Connecting, "connecting"},
    {StoreState::Up, "up"},
    {StoreState::Down, "down"},
};
constexpr const auto& enum_names(StoreState) {
    return kStoreStateNames;
}

}  // namespace nb
