// no_bpf COMMAND [ARGS...]: runs COMMAND under a seccomp filter that makes bpf() fail
// with ENOSYS, as on a kernel built without BPF. Inherited across exec and fork, so the
// agent and everything it starts see the same kernel.
#include <seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: no_bpf COMMAND [ARGS...]\n");
        return 2;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        std::fprintf(stderr, "no_bpf: seccomp_init failed\n");
        return 1;
    }
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(bpf), 0);
    if (rc == 0) rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        std::fprintf(stderr, "no_bpf: installing the filter: %s\n", std::strerror(-rc));
        return 1;
    }
    execvp(argv[1], argv + 1);
    std::fprintf(stderr, "no_bpf: %s: %s\n", argv[1], std::strerror(errno));
    return 127;
}
