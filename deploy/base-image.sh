#!/bin/sh
# Makes the base image the Dockerfile builds on (debian:bookworm-slim by
# default) on a machine that reaches no image registry: a minimal Debian 12
# from debootstrap, imported with `docker import`. Does nothing when the
# image is already present locally. The apt mirror is the host's (first URIs
# line of /etc/apt/sources.list.d/debian.sources or the first deb line of
# /etc/apt/sources.list), so the image reaches the packages the host does.
# Usage: deploy/base-image.sh [IMAGE]   (default debian:bookworm-slim; root)
# SPDX-License-Identifier: MIT
set -eu

image=${1:-debian:bookworm-slim}
if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "$image is not present and debootstrap needs root; run as root or docker pull $image" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
fi

mirror=
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /tmp/mom-base.XXXXXX)
trap 'rm -rf "$root"' EXIT INT TERM
echo "building $image with debootstrap from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
# Like the official slim image: no downloaded packages, apt lists, docs or
# translations, and dpkg keeps later installs free of them too.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" \
    >"$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
echo "imported $image"
