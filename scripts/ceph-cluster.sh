#!/usr/bin/env bash
# A throwaway single-node Ceph cluster with an S3 gateway (radosgw) on 127.0.0.1, for the S3 target's tests
# and benchmarks. Nothing outside DIR is touched; auth is off; the OSD keeps objects in memory (memstore).
#   scripts/ceph-cluster.sh start DIR PORT   -> radosgw on http://127.0.0.1:PORT, S3 user "ci" (CIKEY/CISECRET)
#   scripts/ceph-cluster.sh stop DIR
# Needs the Debian packages ceph-mon ceph-osd radosgw ceph-common (scripts/install-system-deps.sh).
set -euo pipefail
cmd=${1:?start|stop}; D=$(realpath -m "${2:?DIR}")
export CEPH_CONF=$D/ceph.conf
stop() {
  for p in client.rgw.a osd.0 mon.a; do
    [ -f "$D/run/$p.pid" ] && kill "$(cat "$D/run/$p.pid")" 2>/dev/null || true
  done
  for p in client.rgw.a osd.0 mon.a; do
    for _ in $(seq 50); do [ -f "$D/run/$p.pid" ] && kill -0 "$(cat "$D/run/$p.pid")" 2>/dev/null || break; sleep 0.1; done
    [ -f "$D/run/$p.pid" ] && kill -9 "$(cat "$D/run/$p.pid")" 2>/dev/null || true
  done
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
PORT=${3:?PORT}; MONPORT=${4:-$((PORT + 1))}
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph; do
  command -v $b >/dev/null || { echo "ceph-cluster: $b not found: run scripts/install-system-deps.sh (apt: ceph-mon ceph-osd radosgw ceph-common)" >&2; exit 1; }
done
trap 'echo "ceph-cluster: start failed; logs in $D/log" >&2; stop' ERR
FSID=$(cat /proc/sys/kernel/random/uuid)
mkdir -p "$D"/{mon,osd0,run,log,rgw}
cat > "$CEPH_CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MONPORT
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-4294967296}
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
pid file = $D/run/\$name.pid
ms bind ipv6 = false
[mon.a]
mon data = $D/mon
[osd.0]
osd data = $D/osd0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $D/rgw
auth client required = none
ms mon client mode = crc
# quota checks read the bucket's usage from the index each time, not from a cache trusted for 600 s: a test
# cluster is small, and a quota test must see every byte it wrote (a CI run saw 12 MB land under a 3 MiB quota)
rgw bucket quota ttl = 0
EOF
monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MONPORT]" "$D/monmap" >/dev/null
ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
ceph-mon -i a
U=$(cat /proc/sys/kernel/random/uuid)
timeout 60 ceph osd new "$U" >/dev/null
ceph-osd -i 0 --mkfs --osd-uuid "$U" 2>/dev/null
ceph-osd -i 0
timeout 60 bash -c 'until ceph osd stat 2>/dev/null | grep -q "1 up"; do sleep 0.3; done'
timeout 90 radosgw -n client.rgw.a
timeout 90 bash -c "until curl -s -o /dev/null http://127.0.0.1:$PORT/; do sleep 0.3; done"
timeout 60 radosgw-admin user create --uid=ci --display-name=ci --access-key=CIKEY --secret-key=CISECRET >/dev/null
echo "radosgw on http://127.0.0.1:$PORT (access key CIKEY, secret CISECRET)"
