# shellcheck shell=bash
# The Debian package names nbagent needs, in one place: scripts/setup.sh installs them all
# on Debian 12, vagrant/provision.sh the build and test sets on other apt releases.
# Sourced, not run. Also defines nb_install_missing, which installs those not yet there.
# shellcheck disable=SC2034 # the arrays are for the scripts that source this

# Building: compilers, the BPF toolchain and the libraries CMakeLists.txt finds.
# linux-libc-dev provides /usr/include/x86_64-linux-gnu/asm/types.h, which clang -target
# bpf needs, so gcc-multilib is not required.
NB_PKGS_BUILD=(
    build-essential cmake pkg-config clang llvm
    libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
    libmnl-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev googletest
    libabsl-dev    # the peer index: flat hash set of 4-byte ids (issue 6, idle cost)
    libseccomp-dev # tests/tools/no_bpf: the agent on a "kernel without BPF"
    libgoogle-perftools-dev # CPU profiles in debug bundles (libprofiler)
    libarchive-dev # debug bundles: the tar.gz
    libcpp-httplib-dev # /metrics (--metrics-listen): the HTTP server
    libssl-dev     # libcrypto's X25519: the device's public key in status (wireguard-go)
    libcap-dev     # run checks its capabilities, not the uid (a unit with User=)
    libsystemd-dev # sd_notify: the Type=notify unit hears READY, STATUS and RELOADING
    ccache         # scripts/build.sh: CI reuses the machine, so its cache outlives the clone
    pandoc         # nbagent(8) from packaging/man/nbagent.8.md
)
# The Debian package (scripts/package.sh): debhelper builds it, lintian checks it, and a
# debootstrapped Debian 12 chroot installs and removes it.
NB_PKGS_PACKAGE=(debhelper fakeroot lintian debootstrap dpkg-dev)
# Running the tests. --no-install-recommends matters: wireguard-tools recommends a kernel.
NB_PKGS_TEST=(
    wireguard-go wireguard-tools iproute2 iputils-ping util-linux jq socat
    gdb # tests/integration/cycles.sh reads the agent's heap in use through it
    google-perftools # google-pprof: the debug bundle test reads its CPU profile
    curl # tests/integration/metrics.sh scrapes /metrics
    systemd # systemd-analyze: the unit file test (verify, security score)
    groff-base bsdextrautils # the man page test renders nbagent(8) (groff, col)
    bash-completion # the completion test runs packaging/completion/nbagent through it
    etcd-server etcd-client # tests/etcd: the etcd client against real etcd members (issue 20)
)
# scripts/test.sh's sanitizer build (build-asan/, clang 14): clang's ASan/UBSan runtime,
# and libFuzzer for the fuzz targets it builds (NB_FUZZ, tests/fuzz).
NB_PKGS_SANITIZE=(libclang-rt-14-dev libfuzzer-14-dev)
# The qemu kernel matrix (vagrant/qemu): VMs, their initramfs, the kernels' modules.
NB_PKGS_MATRIX=(qemu-system-x86 busybox-static cpio kmod xz-utils)
# The Vagrant matrix (vagrant/run-matrix.sh installs them; not CI): libvirt's daemons
# and its NAT network (dnsmasq-base), and what vagrant/boxes/build.sh makes boxes with.
NB_PKGS_VAGRANT=(vagrant vagrant-libvirt libvirt-daemon-system qemu-system-x86 dnsmasq-base
    qemu-utils fdisk debootstrap rsync openssh-client)

# nb_install_missing PKG...: installs, with apt-get, those of PKG... dpkg does not list as
# installed, and says which (or that all were there). Runs apt-get through $NB_SUDO when
# set (setup.sh as a user with sudo). Returns apt-get's status.
nb_install_missing() {
    local p missing=()
    for p; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "==> packages: all $# already installed"
        return 0
    fi
    echo "==> packages: installing ${missing[*]}"
    # shellcheck disable=SC2086 # NB_SUDO is "sudo" or empty
    ${NB_SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        ${NB_SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
