// Fuzzes the control-socket request check (parse_request, agent/control/request.*): any
// line a root client sends. It never throws, accepts only objects with a known string
// "cmd", and its error text is printable UTF-8 (it goes into a reply and the CLI prints
// it). starts_as_apply, which decides whether a line may be long, only accepts lines that
// begin with the apply command. A request it accepts is either refused by
// request_from_json with a reason or becomes a typed request that encodes back to itself.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agent/control/request.hpp"
#include "base/printable.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    ParsedRequest r = parse_request(line);
    if (r.error.empty()) {
        NB_FUZZ_CHECK(r.request.is_object());
        const auto& cmd = r.request.at("cmd");
        NB_FUZZ_CHECK(cmd.is_string());
        const std::string name = cmd.get<std::string>();
        NB_FUZZ_CHECK_MSG(name == "status" || name == "trace" || name == "peer_idle" ||
                              name == "apply" || name == "set_lazy",
                          name);
        // The typed request: refused with a reason, or one that encodes back to itself.
        try {
            const ControlRequest typed = request_from_json(r.request);
            const nlohmann::json again = to_json(typed);
            NB_FUZZ_CHECK(to_json(request_from_json(again)) == again);
        } catch (const std::invalid_argument& e) {
            NB_FUZZ_CHECK(std::string_view(e.what()).size() > 0);
        }
    } else {
        NB_FUZZ_CHECK_MSG(is_valid_utf8(r.error), r.error);
        // printable() keeps tabs (harmless on one line) and escapes every other control.
        for (unsigned char c : r.error)
            NB_FUZZ_CHECK_MSG((c >= 0x20 || c == '\t') && c != 0x7f, r.error);
    }
    if (starts_as_apply(line)) {
        // Whatever follows: the line's first member is "cmd" with the value "apply".
        const std::size_t brace = line.find('{');
        NB_FUZZ_CHECK(brace != std::string_view::npos);
        NB_FUZZ_CHECK(line.find("\"apply\"") != std::string_view::npos);
    }
    return 0;
}
