#include "agent/control/request.hpp"

#include "base/printable.hpp"

namespace nb {

namespace {

std::string_view strip_nlohmann_prefix(std::string_view what) {
    // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
    if (!what.empty() && what.front() == '[') {
        auto end = what.find("] ");
        if (end != std::string_view::npos) what.remove_prefix(end + 2);
    }
    return what;
}

ParsedRequest fail(std::string error) {
    return {nlohmann::json(), std::move(error)};
}

}  // namespace

ParsedRequest parse_request(std::string_view line) {
    nlohmann::json req;
    try {
        req = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
        // nlohmann quotes the bytes it stopped at: made printable.
        return fail("invalid JSON: " + printable(strip_nlohmann_prefix(e.what())));
    }
    if (!req.is_object()) return fail("invalid request: expected a JSON object");
    auto cmd = req.find("cmd");
    if (cmd == req.end()) return fail("invalid request: missing \"cmd\"");
    if (!cmd->is_string()) return fail("invalid request: \"cmd\" must be a string");
    const auto& name = cmd->get_ref<const std::string&>();
    if (name != "status" && name != "trace" && name != "peer_idle" && name != "apply" &&
        name != "set_lazy") {
        return fail("unknown command \"" + printable(name, 64) +
                    "\" (expected status, trace, peer_idle, apply or set_lazy)");
    }
    return {std::move(req), {}};
}

bool starts_as_apply(std::string_view line) {
    size_t i = 0;
    auto skip_ws = [&] {
        while (i < line.size() &&
               (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
            ++i;
    };
    auto take = [&](std::string_view token) {
        skip_ws();
        if (line.substr(i, token.size()) != token) return false;
        i += token.size();
        return true;
    };
    return take("{") && take("\"cmd\"") && take(":") && take("\"apply\"");
}

}  // namespace nb
