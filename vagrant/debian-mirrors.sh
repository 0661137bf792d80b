# shellcheck shell=bash
# Sourced: the Debian mirrors this machine already uses, so every release the matrices
# fetch (bullseye too) comes from the same place, and the host's apt is never changed.

# Mirror URLs the machine already uses, from the deb822 sources (or the one-line
# sources.list), so bullseye comes from the same place: prints "MAIN SECURITY".
host_mirrors() {
    local main="" sec="" f
    f=/etc/apt/sources.list.d/debian.sources
    if [[ -r $f ]]; then
        # Stanzas are separated by blank lines; pick URIs by the suites they serve.
        read -r main sec < <(awk '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; suites = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); uris = u[1] }
                    if ($i ~ /^Suites:/) suites = $i
                }
                if (uris == "") next
                if (suites ~ /-security/) { if (sec == "") sec = uris }
                else if (main == "") main = uris
            }
            END { print (main == "" ? "-" : main), (sec == "" ? "-" : sec) }' "$f")
    fi
    if [[ -z $main || $main == - ]] && [[ -r /etc/apt/sources.list ]]; then
        main=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    [[ -n $main && $main != - ]] || main=http://deb.debian.org/debian
    [[ -n $sec && $sec != - ]] || sec=${main%/debian}/debian-security
    echo "$main $sec"
}
