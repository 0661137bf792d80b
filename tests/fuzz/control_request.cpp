// Fuzzes the control-socket request parser (parse_request, agent/control/request.*): any
// line a root client sends. It never throws; a line it accepts is a typed request of the
// command the line names, which encodes back to itself; its error text is printable
// UTF-8 (it goes into a reply and the CLI prints it). starts_as_apply, which decides
// whether a line may be long, only accepts lines that begin with the apply command.
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
        NB_FUZZ_CHECK(r.request.has_value());
        // A known command, named as the line names it, that encodes back to itself.
        const nlohmann::json again = to_json(*r.request);
        const std::string name = nlohmann::json::parse(line).at("cmd").get<std::string>();
        NB_FUZZ_CHECK_MSG(again.at("cmd") == name, name);
        NB_FUZZ_CHECK(to_json(request_from_json(again)) == again);
        NB_FUZZ_CHECK(parse_request(again.dump()).error.empty());
    } else {
        NB_FUZZ_CHECK(!r.request.has_value());
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
