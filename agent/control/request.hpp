// A control request line checked as far as the server checks it before handing it on:
// a JSON object whose "cmd" is a known command name. Pure, so it can be fuzzed.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace nb {

struct ParsedRequest {
    nlohmann::json request;  // an object with a known string "cmd", when error is empty
    std::string error;       // what is wrong with the line, printable, for the reply
};

ParsedRequest parse_request(std::string_view line);

// Whether a line begins {"cmd":"apply" (JSON whitespace allowed), judged from its first
// bytes only: the rest may not have arrived yet. Only such a line may be long.
bool starts_as_apply(std::string_view line);

}  // namespace nb
