// Anonymizes the texts of one debug bundle (issue 17): IP addresses, WireGuard keys and
// the names the caller registers (host names, connector commands) become pseudonyms, the
// same ones in every file of the bundle, so a maintainer can still follow one peer from
// status.json to the log. One Anonymizer per bundle: its pseudonyms start from a secret
// of its own (pseudonyms.hpp), so two bundles do not give the same address the same one.
//
// What is kept, so the shape stays readable: the address family, prefix lengths
// ("10.1.2.0/24" -> "198.51.100.7/24"), ports and brackets ("[fd00::1]:51820" ->
// "[2001:db8:5a3c::3]:51820"), the spelling of a key (base64 stays base64, hex stays
// hex), and everything that is no address: versions "1.2.3", times "12:34:56", numbers.
// Addresses that identify nothing stay (0.0.0.0/8, 127.0.0.0/8, ::, ::1, netmasks). A
// prefix and the addresses in it get unrelated pseudonyms: only equality is kept.
//
// Limits: an address already in an output range (a real 198.51.100.7) is mapped like any
// other, so a pseudonym may read like an input of the same bundle; a four-part version
// ("1.2.3.4") is taken for an address, and hex words with "::" ("be::ef") for IPv6.
//
// Texts are scanned once, left to right, each position looked at a bounded number of
// times (text_scan.hpp says what counts as a token); a token split between two calls is
// not seen, so pass whole lines or files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "agent/debug/pseudonyms.hpp"

namespace nb {

class Anonymizer {
  public:
    // The secret from std::random_device.
    Anonymizer();
    // The same seed gives the same pseudonyms, for tests.
    explicit Anonymizer(uint64_t seed);

    // Hides `name` wherever it stands as a word of its own (a name starting or ending
    // with a letter, digit or '_' is not found inside a longer word), also in its JSON
    // spelling (quotes and backslashes escaped): it becomes KIND-0001, KIND-0002... in
    // the order the names of that kind are added. The longest registered name wins where
    // several start at one place. `kind` is a letter, then letters, digits or '_'
    // (std::invalid_argument otherwise). A name shorter than 2 characters is ignored
    // (returns false): hiding it would garble the text around every occurrence.
    bool add_name(std::string_view name, std::string_view kind);

    // `in` with every registered name, key and address replaced.
    std::string text(std::string_view in);
    // The same, appended to `out`.
    void text(std::string_view in, std::string& out);
    // Only addresses ("10.0.0.1:51820", "fd00::/64"...) replaced, names and keys left.
    std::string address(std::string_view in);
    // A key (base64 or hex) replaced if `in` is one, else `in` unchanged.
    std::string key(std::string_view in);

    // How many distinct addresses, keys and names have a pseudonym so far.
    size_t mapped() const;

  private:
    enum What : unsigned { kNames = 1, kKeys = 2, kAddresses = 4, kAll = 7 };
    // The text being written: `in` up to `copied` is in `out`, replaced where it had to be.
    struct Output {
        std::string_view in;
        std::string& out;
        size_t copied = 0;
        // Copies in[copied, i) and skips in[i, i + len): `out`, for what stands for it.
        std::string& replace(size_t i, size_t len);
    };
    void scan(std::string_view in, unsigned what, std::string& out);
    // Each returns how many characters at i it took (replaced, or kept as they are), or
    // 0 if no token of its kind starts there.
    size_t replace_name_at(Output& o, size_t i) const;
    size_t replace_key_at(Output& o, size_t i);
    size_t replace_address_at(Output& o, size_t i);
    void add_spelling(std::string spelling, uint32_t placeholder);

    anon::Pseudonyms pseudonyms_;
    absl::flat_hash_map<uint32_t, uint32_t> v4_;
    absl::flat_hash_map<std::array<uint8_t, 16>, uint32_t> v6_;
    absl::flat_hash_map<std::array<uint8_t, 32>, uint32_t> keys_;
    // Registered names: each spelling to its placeholder; placeholders by number.
    absl::flat_hash_map<std::string, uint32_t> names_;
    std::vector<std::string> placeholders_;
    absl::flat_hash_map<std::string, uint32_t> per_kind_;
    // The first two bytes of every spelling, and the lengths of the spellings starting
    // with them (longest first): most positions are ruled out by one bit.
    std::vector<uint64_t> first_two_;
    absl::flat_hash_map<uint16_t, std::vector<uint32_t>> lengths_;
};

}  // namespace nb
