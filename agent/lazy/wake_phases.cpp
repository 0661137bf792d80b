#include "agent/lazy/wake_phases.hpp"

namespace nb {

WakePhases WakePhaseHistograms::snapshot() const {
    return {connector.snapshot(),   endpoint.snapshot(),     replay.snapshot(),
            first_reply.snapshot(), total.snapshot(),        failed.snapshot(),
            going_idle.snapshot(),  connected_for.snapshot()};
}

std::string render_wake_phases(const WakePhases& w) {
    const struct {
        const char* name;
        const HistogramSnapshot& h;
    } rows[] = {
        {"wake connector", w.connector},   {"wake endpoint", w.endpoint},
        {"wake replay", w.replay},         {"wake first-reply", w.first_reply},
        {"wake total", w.total},           {"wake failed", w.failed},
        {"idle going-idle", w.going_idle}, {"idle connected-for", w.connected_for},
    };
    std::string out;
    for (const auto& r : rows) out += render_histogram(r.name, r.h) + "\n";
    return out;
}

}  // namespace nb
