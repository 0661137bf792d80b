#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "base/time.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

std::string fixed1(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

void pad(std::string& out, const std::string& cell, size_t width) {
    out += cell;
    if (cell.size() < width) out.append(width - cell.size(), ' ');
}

// A wait shown to a person: whole seconds, rounded up so "retry in 0s" never appears
// while the back-off is still running.
std::string format_wait_ms(int64_t ms) {
    if (ms < 1000) return std::to_string(ms) + "ms";
    return format_duration(std::chrono::milliseconds((ms + 999) / 1000 * 1000));
}

void join(std::string& out, const std::vector<std::string>& items) {
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        out += items[i];
    }
}

// The error text comes from outside (a wake hook's stderr, a kernel message); a newline or
// an escape sequence in it must not break the one-line-per-peer listing or the terminal.
void append_printable(std::string& out, std::string_view text) {
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u == 0x7f) ? ' ' : c;
    }
}

void append_program(std::string& out, const ProgramAheadStatus& p) {
    if (p.hook == AttachMode::Clsact) {
        char handle[16];
        std::snprintf(handle, sizeof handle, "0x%x", p.handle);
        out += "clsact pref " + std::to_string(p.priority) + " handle " + handle;
        if (p.id) out += ", id " + std::to_string(p.id);
    } else {
        out += to_string(p.hook);
        out += " id " + std::to_string(p.id);
    }
    if (!p.name.empty()) {
        out += ", name ";
        append_printable(out, p.name);
    }
}

// Whether another program on the device sees packets before ours: one that passes them
// lets idle peers' packets reach WireGuard unheld.
void write_datapath_order(const DatapathOrderStatus& o, std::string& out) {
    constexpr std::string_view kLabel = "datapath:   ";
    if (!o.checked) {
        if (o.error.empty()) return;  // no tc programs (UDP trigger, eager), or an old agent
        out += kLabel;
        out += "order unknown: ";
        append_printable(out, o.error);
        out += '\n';
        return;
    }
    if (o.ahead.empty()) {
        out += std::string(kLabel) + "first on ingress and egress\n";
        return;
    }
    bool labelled = false;
    auto line_start = [&] {
        out += labelled ? std::string(kLabel.size(), ' ') : std::string(kLabel);
        labelled = true;
    };
    std::string clean;  // a direction where ours runs first
    for (const char* dir : {"ingress", "egress"}) {
        std::vector<const ProgramAheadStatus*> here;
        for (const auto& p : o.ahead)
            if (p.direction == dir) here.push_back(&p);
        if (here.empty()) {
            clean = dir;
            continue;
        }
        line_start();
        out += "warning: " + std::to_string(here.size()) +
               (here.size() == 1 ? " program runs" : " programs run") + " before ours on " + dir +
               " (";
        for (size_t i = 0; i < here.size(); ++i) {
            if (i) out += "; ";
            append_program(out, *here[i]);
        }
        out += ")\n";
    }
    if (!clean.empty()) {
        line_start();
        out += "first on " + clean + "\n";
    }
}

}  // namespace

std::string format_relative(int64_t then_ms, int64_t now_ms) {
    if (then_ms <= 0) return "never";
    // Clock steps can put activity slightly in the future; that is "now", not negative.
    const int64_t s = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
    if (s < 60) return std::to_string(s) + "s ago";
    if (s < 3600) return std::to_string(s / 60) + "m ago";
    if (s < 86400) return std::to_string(s / 3600) + "h ago";
    return std::to_string(s / 86400) + "d ago";
}

// "0 B", "512 B", "1.50 KiB", "3.25 GiB": as `wg show` writes transfer.
std::string format_bytes(uint64_t n) {
    if (n < 1024) return std::to_string(n) + " B";
    constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(n) / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(kUnits)) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
    return buf;
}

// "3d4h", "5h12m", "7m3s", "42s": how long, to the two largest units.
std::string format_age(int64_t ms) {
    int64_t s = std::max<int64_t>(0, ms / 1000);
    const int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
    s %= 60;
    if (d) return std::to_string(d) + "d" + std::to_string(h) + "h";
    if (h) return std::to_string(h) + "h" + std::to_string(m) + "m";
    if (m) return std::to_string(m) + "m" + std::to_string(s) + "s";
    return std::to_string(s) + "s";
}

void write_status_summary(const AgentStatus& s, std::string& out) {
    out += "interface:  " + s.interface;
    if (!s.public_key.empty()) out += ", public key " + s.public_key;
    if (s.listen_port) out += ", listening on port " + std::to_string(s.listen_port);
    out += "\n";
    if (!s.version.empty())
        out += "agent:      nbagent " + s.version + ", up " + format_age(s.uptime_s * 1000) +
               " (since " + s.started + ")\n";
    out += std::string("backend:    ") + to_string(s.wg_backend) + "\n";
    if (!s.wireguard.empty()) {
        out += "wireguard:  " + s.wireguard;
        if (!s.wireguard_since.empty()) out += " since " + s.wireguard_since;
        if (!s.wireguard_error.empty()) {
            out += " (";
            append_printable(out, s.wireguard_error);
            out += ")";
        }
        out += "\n";
    }
    out += std::string("trigger:    ") + to_string(s.trigger);
    if (s.attach_mode) out += std::string(" (") + to_string(*s.attach_mode) + ")";
    if (!s.trigger_reason.empty()) out += " (fallback: " + s.trigger_reason + ")";
    out += "\n";
    write_datapath_order(s.datapath_order, out);
    if (s.store) {
        out += std::string("store:      etcd ") + to_string(s.store->state) + ", mesh " +
               s.store->mesh + ": " + std::to_string(s.store->nodes) + " nodes at revision " +
               std::to_string(s.store->revision) +
               (s.store->registered ? ", registered\n" : ", not registered\n");
    }
    out += std::string("lazy:       ") + switch_name(s.lazy);
    // 0: an agent from before the threshold was reported; say nothing rather than "0s".
    if (s.inactivity_threshold_ms > 0) {
        out += " (inactivity threshold " +
               format_duration(std::chrono::milliseconds(s.inactivity_threshold_ms)) + ")";
    }
    out += "\n";
    out += "peers:      " + std::to_string(s.idle + s.connecting + s.connected) + " (Idle " +
           std::to_string(s.idle) + ", Connecting " + std::to_string(s.connecting) +
           ", Connected " + std::to_string(s.connected) + ")\n";
    if (s.lost_reports)
        out += "overruns:   " + std::to_string(s.lost_reports) +
               " reports lost by the ring buffer, " + std::to_string(s.lost_recovered) +
               " peers recovered\n";
    if (s.wakes_deferred)
        out += "wake queue: " + std::to_string(s.wakes_queued) + " waiting now, " +
               std::to_string(s.wakes_deferred) + " waited, " + std::to_string(s.wakes_shed) +
               " refused (--wake-rate)\n";
}

// Below the table: an error message is long and would widen every row.
static void write_wake_errors(const AgentStatus& s, std::string& out) {
    out += "\nwake errors:\n";
    for (const auto& p : s.peers) {
        if (p.last_error.empty() && p.failures == 0) continue;
        out += p.public_key;
        out += ": ";
        if (p.last_error.empty()) {
            out += "wake failed";
        } else {
            append_printable(out, p.last_error);
        }
        std::string why;
        if (p.retry_in_ms > 0) why = "retry in " + format_wait_ms(p.retry_in_ms);
        if (p.failures > 0) {
            if (!why.empty()) why += ", ";
            why += std::to_string(p.failures) + (p.failures == 1 ? " failure" : " failures");
        }
        if (!why.empty()) out += " (" + why + ")";
        out += '\n';
    }
}

void write_peer_table(const AgentStatus& s, int64_t now_ms, std::string& out) {
    constexpr size_t kCols = 13;
    constexpr size_t kGroups = 4;  // shown only when some peer is in a group
    const std::array<std::string, kCols> header = {
        "PUBLIC KEY", "ALLOWED IPS", "STATE",     "FOR",       "GROUPS",  "ENDPOINT",     "WAKES",
        "HELD",       "DROPPED",     "LAST WAKE", "HANDSHAKE", "RX / TX", "LAST ACTIVITY"};
    int64_t oldest_read_ms = 0;  // of WireGuard's figures shown
    std::vector<std::array<std::string, kCols>> rows;
    rows.reserve(s.peers.size());
    std::array<size_t, kCols> width{};
    for (size_t c = 0; c < kCols; ++c) width[c] = header[c].size();
    bool any_groups = false;
    size_t failing = 0;
    for (const auto& p : s.peers) {
        std::string ips;
        join(ips, p.allowed_ips);
        std::string groups;
        join(groups, p.groups);
        any_groups = any_groups || !groups.empty();
        if (!p.last_error.empty() || p.failures > 0) ++failing;
        std::string state = to_string(p.state);
        if (!p.lazy) state += " (never lazy)";
        // Not connected yet: where a wake will go, in parentheses.
        std::string endpoint = p.endpoint;
        if (endpoint.empty() && !p.wake_endpoint.empty()) endpoint = "(" + p.wake_endpoint + ")";
        std::array<std::string, kCols> row = {
            p.public_key,
            ips.empty() ? "-" : std::move(ips),
            std::move(state),
            p.state_since_ms > 0 ? format_age(now_ms - p.state_since_ms) : "-",
            groups.empty() ? "-" : std::move(groups),
            endpoint.empty() ? "-" : std::move(endpoint),
            std::to_string(p.wakes),
            std::to_string(p.held),
            std::to_string(p.dropped),
            p.last_wake_ms < 0 ? "-" : fixed1(p.last_wake_ms) + " ms",
            format_relative(p.last_handshake_ms, now_ms),
            format_bytes(p.rx_bytes) + " / " + format_bytes(p.tx_bytes),
            format_relative(p.last_activity_ms, now_ms)};
        if (p.wg_read_ms > 0 && (oldest_read_ms == 0 || p.wg_read_ms < oldest_read_ms))
            oldest_read_ms = p.wg_read_ms;
        for (size_t c = 0; c < kCols; ++c) width[c] = std::max(width[c], row[c].size());
        rows.push_back(std::move(row));
    }
    auto write_row = [&](const std::array<std::string, kCols>& row) {
        for (size_t c = 0; c + 1 < kCols; ++c) {
            if (c == kGroups && !any_groups) continue;
            pad(out, row[c], width[c] + 2);
        }
        out += row[kCols - 1];
        out += '\n';
    };
    out.reserve(out.size() + (rows.size() + 1) * 160);
    write_row(header);
    for (const auto& row : rows) write_row(row);
    // The agent reads WireGuard's figures now and then, not for each status.
    if (oldest_read_ms > 0)
        out += "\nhandshake and rx / tx as WireGuard counted them " +
               format_relative(oldest_read_ms, now_ms) + " or later\n";
    if (failing > 0) write_wake_errors(s, out);
}

CLI::App* add_status_command(CLI::App& app, StatusArgs& a) {
    CLI::App* cmd = app.add_subcommand("status", "Show the agent's state");
    cmd->add_flag("-d,--detail", a.detail, "List every peer");
    cmd->add_option("--state", a.state, "Only peers in this state (implies -d)")
        ->check(CLI::IsMember({"idle", "connecting", "connected"}, CLI::ignore_case));
    cmd->add_option("--peer", a.peer,
                    "Only the peer with this public key, or whose key starts so (implies -d)");
    cmd->add_option("--ip", a.ip,
                    "Only the peer whose allowed IPs route this address, longest prefix first, "
                    "as WireGuard routes it (implies -d)")
        ->check(ip_validator());
    cmd->add_flag("--failing", a.failing,
                  "Only peers whose last wakes failed or that back off now (implies -d)");
    cmd->add_flag("--json", a.json, "Print the status object as JSON");
    add_socket_options(*cmd, a.interface, a.run_dir);
    return cmd;
}

std::optional<std::string_view> verbatim_status(std::string_view line) {
    constexpr std::string_view kPrefix = R"({"ok":true,"status":{)";
    if (!line.starts_with(kPrefix) || !line.ends_with("}}")) return std::nullopt;
    line.remove_prefix(kPrefix.size() - 1);
    line.remove_suffix(1);
    return line;
}

int run_status(const StatusArgs& a, std::ostream& out) {
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    StatusRequest req{a.detail, {}};
    if (a.state) {
        std::string s = *a.state;
        for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
        req.filter.state = peer_state_from_string(s);
    }
    if (a.peer) req.filter.key_prefix = *a.peer;
    if (a.ip) req.filter.ip = IpAddr::parse(*a.ip);  // checked by ip_validator
    req.filter.failing = a.failing;
    req.detail = req.detail || !req.filter.empty();
    const std::string_view line = client.request_text(to_json(ControlRequest{req}));
    if (a.json) {
        // The agent writes this exact envelope with nlohmann's serializer (see
        // status_reply_text), so the object is valid JSON as it is: forwarded verbatim.
        // Parsing and printing it again took 350 ms at 100k peers, six times the rest.
        if (auto object = verbatim_status(line)) {
            out << *object << '\n';
            return 0;
        }
    }
    const nlohmann::json reply = ControlClient::check_reply(line);
    auto st = reply.find("status");
    if (st == reply.end() || !st->is_object()) {
        throw std::runtime_error("invalid reply from nbagent (no status object)");
    }
    if (a.json) {
        out << st->dump() << '\n';
        return 0;
    }
    const AgentStatus status = agent_status_from_json(*st);
    std::string text;
    write_status_summary(status, text);
    if (req.detail) {
        text += '\n';
        if (status.peers.empty() && !req.filter.empty())
            text += "no peer matches\n";
        else
            write_peer_table(status, unix_ms(), text);
    }
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    return 0;
}

}  // namespace nb::cli
