#!/usr/bin/env bash
# Debian packages the tests and benchmarks need (as root): rsync and xxhsum are the peers that replica is
# compared with; util-linux (mount, setpriv) and coreutils (sync -f) are normally present already.
set -euo pipefail
need=()
command -v rsync >/dev/null || need+=(rsync)
command -v xxhsum >/dev/null || need+=(xxhash)
command -v setpriv >/dev/null || need+=(util-linux)
command -v mkfifo >/dev/null || need+=(coreutils)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v script >/dev/null || need+=(bsdutils)
[ -x /usr/bin/time ] || need+=(time)   # peak RSS in npm run bench
[ -x /usr/sbin/sshd ] || need+=(openssh-server)   # the ssh target's tests run a real sshd on loopback
# the S3 target's tests start a real single-node Ceph cluster with radosgw (scripts/ceph-cluster.sh)
for b in ceph-mon ceph-osd radosgw; do command -v $b >/dev/null || need+=("$b"); done
command -v ceph >/dev/null || need+=(ceph-common)
command -v curl >/dev/null || need+=(curl)
command -v rclone >/dev/null || need+=(rclone)   # npm run bench compares the S3 upload with rclone copy
# a stuck target (a hung NFS server) is tested with a FUSE file system that blocks forever (test/fixtures/blockfs.py)
[ -f /usr/lib/python3/dist-packages/fusepy.py ] || need+=(python3-fusepy)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v chattr >/dev/null || need+=(e2fsprogs)
# a tape drive target positions the tape with mt (mt-st); its tests run it against a device that is not there
command -v mt >/dev/null || need+=(mt-st)
# the HTML report is checked in headless Chromium (playwright-core drives Debian's chromium; no download)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
# `replica completion zsh|fish` is loaded into real shells, and the man page rendered, by the tests
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
command -v groff >/dev/null || need+=(groff-base)
command -v man >/dev/null || need+=(man-db)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install as root: apt-get install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
