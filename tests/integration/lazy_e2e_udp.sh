#!/usr/bin/env bash
# lazy_e2e with the UDP trigger engine forced (--trigger udp) where BPF works.
export NB_TEST_TRIGGER=udp NB_EXPECT_TRIGGER=udp
unset NB_TEST_NO_BPF NB_TEST_ATTACH
exec bash "$(dirname "$0")/lazy_e2e.sh"
