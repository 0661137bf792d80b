#include "agent/lazy/state_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "base/blocking.hpp"
#include "base/file_io.hpp"

namespace nb {

std::string state_file_path(const std::string& run_dir, const std::string& interface) {
    return run_dir + "/" + interface + ".peers.json";
}

void save_peer_state(const std::string& path, const std::vector<PeerSpec>& peers) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : peers) {
        if (!p.endpoint && p.keepalive == 0) continue;
        nlohmann::json e = {{"public_key", p.wg.public_key.base64()}, {"keepalive", p.keepalive}};
        if (p.endpoint) e["endpoint"] = *p.endpoint;
        list.push_back(std::move(e));
    }
    const std::string text = nlohmann::json{{"version", 1}, {"peers", list}}.dump() + "\n";
    const std::string tmp = path + ".tmp";
    // Writing and syncing wait for the disk; the JSON above is only the loop's own work.
    BlockingTimer waiting(BlockingKind::StateFile);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(tmp + ": " + std::strerror(errno));
    if (int e = write_all(fd, text)) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(tmp + ": " + std::strerror(e));
    }
    // Durable before it replaces the old one: this file is what a crash leaves behind.
    if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error(path + ": " + std::strerror(e));
    }
}

SavedPeers load_peer_state(const std::string& path) {
    SavedPeers out;
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return out;
        throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(path + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("peers") || !j["peers"].is_array())
        throw std::runtime_error(path + ": expected an object with a \"peers\" list");
    size_t i = 0;
    for (const auto& e : j["peers"]) {
        const std::string where = path + ": peers[" + std::to_string(i++) + "]";
        if (!e.is_object() || !e.contains("public_key") || !e["public_key"].is_string())
            throw std::runtime_error(where + ": no public_key");
        auto key = WgKey::from_base64(e["public_key"].get<std::string>());
        if (!key) throw std::runtime_error(where + ": public_key is not a WireGuard key");
        SavedPeer s;
        if (e.contains("endpoint")) {
            if (!e["endpoint"].is_string()) throw std::runtime_error(where + ": bad endpoint");
            s.endpoint = e["endpoint"].get<std::string>();
        }
        if (e.contains("keepalive")) {
            if (!e["keepalive"].is_number_unsigned() || e["keepalive"].get<uint64_t>() > 65535)
                throw std::runtime_error(where + ": bad keepalive");
            s.keepalive = e["keepalive"].get<uint16_t>();
        }
        out[*key] = std::move(s);
    }
    return out;
}

void remove_peer_state(const std::string& path) {
    ::unlink(path.c_str());
}

bool is_udp_listener_endpoint(const std::string& endpoint) {
    // The UDP trigger engine's listeners: 127.1.0.1 and up (agent/activity/udp_trigger).
    unsigned a = 0, b = 0, c = 0, d = 0, port = 0;
    char tail = 0;
    return std::sscanf(endpoint.c_str(), "%u.%u.%u.%u:%u%c", &a, &b, &c, &d, &port, &tail) == 5 &&
           a == 127 && b >= 1;
}

void merge_saved_state(std::vector<PeerSpec>& peers, const SavedPeers& saved) {
    for (auto& p : peers) {
        // An idle peer of the UDP engine points at the dead agent's listener.
        if (p.endpoint && is_udp_listener_endpoint(*p.endpoint)) p.endpoint.reset();
        auto it = saved.find(p.wg.public_key);
        if (it == saved.end()) continue;
        if (!p.endpoint) p.endpoint = it->second.endpoint;
        if (p.keepalive == 0) p.keepalive = it->second.keepalive;
    }
}

}  // namespace nb
