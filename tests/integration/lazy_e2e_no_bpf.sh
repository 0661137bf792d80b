#!/usr/bin/env bash
# lazy_e2e on a "kernel without BPF": the agent runs under a seccomp filter that makes
# bpf() fail with ENOSYS (tests/tools/no_bpf), must pick the UDP trigger engine on its
# own (--trigger auto, the default) and pass the same end-to-end scenario.
export NB_TEST_NO_BPF=1 NB_EXPECT_TRIGGER=udp
unset NB_TEST_TRIGGER NB_TEST_ATTACH
exec bash "$(dirname "$0")/lazy_e2e.sh"
