#include "agent/debug/anonymizer.hpp"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "agent/debug/text_scan.hpp"

namespace nb {

namespace {

uint64_t random_secret() {
    std::random_device rd;
    return uint64_t{rd()} << 32 | rd();
}

// How a JSON writer (nlohmann's among them) spells `s` inside a string.
std::string json_spelling(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string o;
    for (char c : s) {
        switch (c) {
            case '"':
                o += "\\\"";
                break;
            case '\\':
                o += "\\\\";
                break;
            case '\b':
                o += "\\b";
                break;
            case '\f':
                o += "\\f";
                break;
            case '\n':
                o += "\\n";
                break;
            case '\r':
                o += "\\r";
                break;
            case '\t':
                o += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    o += "\\u00";
                    o += kHex[c >> 4];
                    o += kHex[c & 15];
                } else {
                    o += c;
                }
        }
    }
    return o;
}

bool valid_kind(std::string_view kind) {
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (kind.empty() || !letter(kind[0])) return false;
    return std::all_of(kind.begin(), kind.end(),
                       [&](char c) { return letter(c) || (c >= '0' && c <= '9') || c == '_'; });
}

uint16_t first_two(std::string_view s, size_t i) {
    return static_cast<uint16_t>(static_cast<unsigned char>(s[i]) << 8 |
                                 static_cast<unsigned char>(s[i + 1]));
}

void append_hex(const std::array<uint8_t, 32>& bytes, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (uint8_t b : bytes) {
        out += kHex[b >> 4];
        out += kHex[b & 15];
    }
}

}  // namespace

std::string& Anonymizer::Output::replace(size_t i, size_t len) {
    out.append(in.data() + copied, i - copied);
    copied = i + len;
    return out;
}

Anonymizer::Anonymizer() : Anonymizer(random_secret()) {}

Anonymizer::Anonymizer(uint64_t seed) : pseudonyms_(seed) {}

bool Anonymizer::add_name(std::string_view name, std::string_view kind) {
    if (!valid_kind(kind))
        throw std::invalid_argument("anonymizer: name kind \"" + std::string(kind) +
                                    "\" is not a letter followed by letters, digits or '_'");
    if (name.size() < 2) return false;
    if (names_.contains(absl::string_view(name.data(), name.size()))) return true;
    const uint32_t number = ++per_kind_[std::string(kind)];
    std::string placeholder = std::string(kind) + "-0000";
    std::string digits = std::to_string(number);
    if (digits.size() < 4) {
        placeholder.replace(placeholder.size() - digits.size(), digits.size(), digits);
    } else {
        placeholder.replace(placeholder.size() - 4, 4, digits);
    }
    const auto index = static_cast<uint32_t>(placeholders_.size());
    placeholders_.push_back(std::move(placeholder));
    std::string json = json_spelling(name);
    add_spelling(std::string(name), index);
    if (json != name) add_spelling(std::move(json), index);
    return true;
}

void Anonymizer::add_spelling(std::string spelling, uint32_t placeholder) {
    const uint16_t two = first_two(spelling, 0);
    const auto len = static_cast<uint32_t>(spelling.size());
    if (!names_.try_emplace(std::move(spelling), placeholder).second) return;
    if (first_two_.empty()) first_two_.resize(65536 / 64);
    first_two_[two / 64] |= uint64_t{1} << (two % 64);
    std::vector<uint32_t>& lens = lengths_[two];
    if (std::find(lens.begin(), lens.end(), len) != lens.end()) return;
    lens.insert(std::upper_bound(lens.begin(), lens.end(), len, std::greater<>()), len);
}

std::string Anonymizer::text(std::string_view in) {
    std::string out;
    scan(in, kAll, out);
    return out;
}

void Anonymizer::text(std::string_view in, std::string& out) {
    scan(in, kAll, out);
}

std::string Anonymizer::address(std::string_view in) {
    std::string out;
    scan(in, kAddresses, out);
    return out;
}

std::string Anonymizer::key(std::string_view in) {
    auto k = anon::key_at(in, 0);
    if (!k || k->len != in.size()) return std::string(in);
    std::string out;
    scan(in, kKeys, out);
    return out;
}

size_t Anonymizer::mapped() const {
    return v4_.size() + v6_.size() + keys_.size() + placeholders_.size();
}

void Anonymizer::scan(std::string_view in, unsigned what, std::string& out) {
    out.reserve(out.size() + in.size() + in.size() / 8);
    const bool names = (what & kNames) && !names_.empty();
    Output o{in, out};
    for (size_t i = 0; i < in.size();) {
        size_t used = 0;
        if (names) used = replace_name_at(o, i);
        if (!used && anon::may_start_token(in, i)) {
            if (what & kKeys) used = replace_key_at(o, i);
            if (!used && (what & kAddresses)) used = replace_address_at(o, i);
        }
        i += used ? used : 1;
    }
    o.replace(in.size(), 0);
}

size_t Anonymizer::replace_name_at(Output& o, size_t i) const {
    const std::string_view in = o.in;
    if (i + 1 >= in.size()) return 0;
    const uint16_t two = first_two(in, i);
    if (!(first_two_[two / 64] >> (two % 64) & 1)) return 0;
    for (uint32_t len : lengths_.find(two)->second) {
        if (i + len > in.size()) continue;
        // absl's own string_view: Debian's abseil is built without std::string_view.
        auto it = names_.find(absl::string_view(in.data() + i, len));
        if (it == names_.end() || !anon::name_fits_at(in, i, len)) continue;
        o.replace(i, len) += placeholders_[it->second];
        return len;
    }
    return 0;
}

size_t Anonymizer::replace_key_at(Output& o, size_t i) {
    auto k = anon::key_at(o.in, i);
    if (!k) return 0;
    if (std::all_of(k->bytes.begin(), k->bytes.end(), [](uint8_t b) { return b == 0; }))
        return k->len;  // "no key" identifies nothing: copied as it is
    const auto n = keys_.try_emplace(k->bytes, static_cast<uint32_t>(keys_.size())).first->second;
    const std::string b64 = pseudonyms_.key_base64(n);
    std::string& out = o.replace(i, k->len);
    if (k->hex) {
        append_hex(*anon::decode_base64_key(b64), out);
    } else {
        out += b64;
    }
    return k->len;
}

size_t Anonymizer::replace_address_at(Output& o, size_t i) {
    auto a = anon::address_at(o.in, i);
    if (!a) return 0;
    if (anon::identifies_nothing(a->addr)) return a->len;  // copied as it is
    std::string& out = o.replace(i, a->len);
    if (a->addr.family == AF_INET) {
        const uint32_t v = a->addr.v4_value();
        const auto n = v4_.try_emplace(v, static_cast<uint32_t>(v4_.size())).first->second;
        pseudonyms_.ipv4(n).append_to(out);
    } else {
        const auto n =
            v6_.try_emplace(a->addr.bytes, static_cast<uint32_t>(v6_.size())).first->second;
        pseudonyms_.ipv6(n).append_to(out);
    }
    return a->len;
}

}  // namespace nb
