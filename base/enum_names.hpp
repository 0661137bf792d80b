// An enum's names in one table, read both ways and listed in errors: to_string, parsing
// and the "expected ..." text cannot drift apart, as a switch and an if-chain can.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

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

// `expected one of a, b or c, got "x"`: the words of every error about such a name.
template <typename T, std::size_t N>
std::string expected_one_of(const T (&table)[N], std::string_view got) {
    std::string out = "expected one of " + name_list(table) + ", got \"";
    out.append(got).append("\"");
    return out;
}

// An enum whose domain declares its one table next to it, as
//   inline constexpr EnumName<E> kENames[] = {...};
//   constexpr const auto& enum_names(E) { return kENames; }
// (found by argument-dependent lookup): to_string, parse_enum, enum_name_list and the
// CLI's validators all read that table.
template <typename E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) {
    enum_names(e)[0].name;
};

template <NamedEnum E>
constexpr const char* to_string(E value) {
    return name_of(enum_names(value), value, "?");
}

// The value `name` spells exactly; none for any other spelling (no fallback).
template <NamedEnum E>
constexpr std::optional<E> parse_enum(std::string_view name) {
    return value_of(enum_names(E{}), name);
}

// For a status field that may name nothing: "" then.
template <NamedEnum E>
constexpr const char* to_string(const std::optional<E>& value) {
    return value ? to_string(*value) : "";
}

template <NamedEnum E>
std::string enum_name_list() {
    return name_list(enum_names(E{}));
}

}  // namespace nb
