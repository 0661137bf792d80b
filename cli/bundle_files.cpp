#include "cli/bundle_files.hpp"

#include <cctype>

namespace nb::cli {

namespace {

bool key_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
}

bool all_hex(std::string_view s) {
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

}  // namespace

std::string wireguard_dump(const WgDevice& dev) {
    // Built with append, not "literal" + std::string: GCC 12 at -O3 warns falsely about
    // the latter (-Wrestrict).
    std::string out = "(hidden)\t(public key not derived)\t";
    auto column = [&out](const std::string& value, char end) {
        out += value;
        out += end;
    };
    column(std::to_string(dev.listen_port), '\t');
    column(dev.fwmark ? std::to_string(dev.fwmark) : "off", '\n');
    for (const WgPeer& p : dev.peers) {
        out += p.public_key.base64();
        out += p.preshared_key ? "\t(hidden)\t" : "\t(none)\t";
        column(p.endpoint ? p.endpoint->str() : "(none)", '\t');
        for (size_t i = 0; i < p.allowed_ips.size(); ++i) {
            if (i) out += ',';
            out += p.allowed_ips[i].str();
        }
        if (p.allowed_ips.empty()) out += "(none)";
        out += '\t';
        column(std::to_string(p.last_handshake_sec), '\t');
        column(std::to_string(p.rx_bytes), '\t');
        column(std::to_string(p.tx_bytes), '\t');
        column(p.persistent_keepalive ? std::to_string(p.persistent_keepalive) : "off", '\n');
    }
    return out;
}

std::unordered_set<std::string> secrets_of(const WgDevice& dev) {
    std::unordered_set<std::string> out;
    auto add = [&](const WgKey& k) {
        if (k.is_zero()) return;
        out.insert(k.base64());
        out.insert(k.hex());
    };
    if (dev.private_key) add(*dev.private_key);
    for (const WgPeer& p : dev.peers)
        if (p.preshared_key) add(*p.preshared_key);
    return out;
}

size_t scrub_secrets(std::string& text, const std::unordered_set<std::string>& secrets) {
    if (secrets.empty()) return 0;
    size_t replaced = 0;
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        if (!key_char(text[i])) {
            out += text[i++];
            continue;
        }
        size_t end = i;
        while (end < text.size() && key_char(text[end])) ++end;
        std::string_view run(text.data() + i, end - i);
        size_t take = run.size();
        bool secret = false;
        if (run.size() == 43 && end < text.size() && text[end] == '=' &&
            (end + 1 == text.size() || text[end + 1] != '=')) {
            take = 44;
            secret = secrets.count(std::string(text, i, 44)) != 0;
        } else if (run.size() == 64 && all_hex(run)) {
            std::string lower(run);
            for (char& c : lower)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            secret = secrets.count(lower) != 0;
        }
        if (secret) {
            out += "(removed)";
            ++replaced;
        } else {
            out.append(text, i, take);
        }
        i += take;
    }
    text = std::move(out);
    return replaced;
}

std::string bundle_readme(bool anonymized, std::string_view cpu_profile) {
    std::string out =
        "nbagent debug bundle\n\n"
        "version.json     nbagent, libbpf and kernel versions, build type and compiler\n"
        "features.json    what the kernel offers (nbagent features --json)\n"
        "settings.json    command line, every run option and where it came from\n"
        "                 (flag, env, default), trace and log ring sizes\n"
        "status.json      nbagent status -d --json: counts first, then every peer\n"
        "trace.ndjson     the last trace events, oldest first (one JSON object a line)\n"
        "agent.log        the last log lines\n"
        "wireguard.txt    the device as `wg show dump` lays it out, keys hidden\n"
        "bpf.txt          our programs and maps, ring refusals, slots of non-idle peers\n"
        "tc.txt           every tcx program and clsact filter on the device, in order\n"
        "state-file.json  endpoints of idle peers kept for a restart (when there is one)\n"
        "resources.txt    RSS, threads, fds, map memory, WireGuard's slab caches\n"
        "stacks.txt       every agent thread's stack when the bundle was taken\n"
        "cpu.prof         CPU profile (gperftools format: google-pprof --text nbagent cpu.prof)\n"
        "allocations.txt  glibc malloc's summary (in use, free, arenas)\n"
        "locks.txt        lock contention: waits per lock\n"
        "blocking.txt     time the event loop spent waiting, per kind of call\n"
        "latency.txt      histograms of each phase of a wake, and of going idle\n\n";
    out += "cpu.prof: " + std::string(cpu_profile) + "\n";
    out += anonymized
               ? "Anonymized: IPv4 addresses are mapped into 198.51.100.0/24, 203.0.113.0/24 "
                 "and on, IPv6 into 2001:db8::/32, public keys, host names, connector "
                 "commands and group names to placeholders; the same in every file. cpu.prof "
                 "is binary and holds no addresses or keys.\n"
               : "Not anonymized: addresses and public keys are as they are (take it with "
                 "--anonymize to share it publicly).\n";
    out += "No private or preshared key is in any file.\n";
    return out;
}

}  // namespace nb::cli
