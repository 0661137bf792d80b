// What the etcd client hands back: keys and values as raw bytes (the gateway's base64
// undone), revisions and lease ids as int64 (the gateway's JSON strings parsed).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace nb {

enum class EtcdErrorKind {
    Unavailable,  // no member answered in time (each tried is named in the message)
    Server,       // etcd refused the request: its message, and its gRPC code in code()
    Malformed,    // a reply that is not what the gateway sends: the field is named
};

class EtcdError : public std::runtime_error {
  public:
    EtcdError(EtcdErrorKind kind, const std::string& what, int code = -1)
        : std::runtime_error(what), kind_(kind), code_(code) {}
    EtcdErrorKind kind() const { return kind_; }
    // The gRPC status code of a Server error (5: not found, 3: invalid argument, ...).
    int code() const { return code_; }

  private:
    EtcdErrorKind kind_;
    int code_;
};

struct EtcdKeyValue {
    std::string key;
    std::string value;  // empty with keys_only
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;
    int64_t lease = 0;  // 0: none
    bool operator==(const EtcdKeyValue&) const = default;
};

struct EtcdRangeResult {
    int64_t revision = 0;  // the store's revision the range was read at
    std::vector<EtcdKeyValue> kvs;
    int64_t count = 0;  // keys in the range, also those a limit left out
    bool more = false;  // a limit left some out
};

struct EtcdDeleteResult {
    int64_t revision = 0;
    int64_t deleted = 0;
};

struct EtcdTxnResult {
    int64_t revision = 0;
    bool succeeded = false;  // the comparison held, so the put was made
};

struct EtcdLease {
    int64_t id = 0;
    int64_t ttl = 0;  // seconds granted
};

struct EtcdEvent {
    enum class Type { Put, Delete };
    Type type = Type::Put;
    EtcdKeyValue kv;  // a Delete has key and mod_revision (the deletion's) only
    bool operator==(const EtcdEvent&) const = default;
};

}  // namespace nb
