// Base64 (RFC 4648, padded) for the gateway's bytes fields, with OpenSSL's libcrypto.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nb::etcd {

std::string base64_encode(std::string_view bytes);
// None unless `text` is padded base64 (length a multiple of 4, only the alphabet).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace nb::etcd
