// An enum's names in one table, read both ways and listed in errors: to_string, parsing
// and the "expected ..." text cannot drift apart, as a switch and an if-chain can.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace nb {

template <typename E>
struct EnumName {
    E value;
    const char* name;
};

template <typename E, std::size_t N>
constexpr const char* name_of(const EnumName<E> (&names)[N], E value, const char* unknown) {
    for (const auto& n : names)
        if (n.value == value) return n.name;
    return unknown;
}

template <typename E, std::size_t N>
constexpr std::optional<E> value_of(const EnumName<E> (&names)[N], std::string_view name) {
    for (const auto& n : names)
        if (name == n.name) return n.value;
    return std::nullopt;
}

// "a, b or c": the `name` of each entry of a table, for an error that says what it takes.
template <typename T, std::size_t N>
std::string name_list(const T (&table)[N]) {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
        if (i) out += i + 1 == N ? " or " : ", ";
        out += table[i].name;
    }
    return out;
}

}  // namespace nb
