#!/bin/sh
# Happy Eyeballs through the CLI in a private network + mount namespace: dual.test is ::1 and
# 127.0.0.1 in a hosts file bound over /etc/hosts; nftables drops or rejects per family.
# usage (as root): review/eyeballs_netns.sh   (prints each case's command, time, exit code, stderr)
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$here/.." && pwd)/build/dev/tools/orderly/orderly
exec unshare -n -m sh -s "$bin" <<'INNER'
bin=$1
set -u
ip link set lo up
hosts=$(mktemp); printf '::1 dual.test\n127.0.0.1 dual.test\n::1 six.test\n' > "$hosts"
mount --bind "$hosts" /etc/hosts
python3 -c "
import socket,time,threading
s=socket.create_server(('127.0.0.1',7001)); n=[0]
def srv():
    while True:
        c,_=s.accept(); n[0]+=1; c.sendall(b'conn %d\n'%n[0]); c.shutdown(1)
        while c.recv(100): pass
        c.close()
threading.Thread(target=srv,daemon=True).start(); time.sleep(60)" &
srv=$!
sleep 0.5
nft add table inet t
nft 'add chain inet t out { type filter hook output priority 0 ; }'
run() {
  echo "== $*"
  start=$(date +%s%N)
  out=$(printf '' | timeout 20 "$bin" "$@" 2>/tmp/he_err); rc=$?
  end=$(date +%s%N)
  echo "   exit $rc after $(( (end-start)/1000000 )) ms; stdout: $out"
  sed 's/^/   stderr: /' /tmp/he_err
}
# a) IPv6 SYNs dropped, IPv4 accepts
nft add rule inet t out ip6 daddr ::1 tcp dport 7001 drop
run connect --report dual.test:7001
run connect --report --eyeballs-delay 100ms dual.test:7001
run connect --report --eyeballs-delay 0 --timeout 1500ms dual.test:7001
# b) both refused (nothing on 7002)
run connect --report dual.test:7002
# c) both black-holed
nft add rule inet t out ip daddr 127.0.0.1 tcp dport 7003 drop
nft add rule inet t out ip6 daddr ::1 tcp dport 7003 drop
run connect --report --timeout 1s dual.test:7003
# d) only IPv6, black-holed
run connect --report --timeout 700ms six.test:7001
# e) bad values
run connect --eyeballs-delay 50ms dual.test:7001
run connect --eyeballs-delay 3s dual.test:7001
run connect --timeout 0 dual.test:7001
run connect nosuch.invalid:7001
run connect --json dual.test:7001
kill $srv
INNER
