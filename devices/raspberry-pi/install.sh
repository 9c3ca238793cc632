#!/usr/bin/env bash
# Installs quorumd as a system service on a Raspberry Pi (Raspberry Pi OS / Debian, as root):
#   sudo devices/raspberry-pi/install.sh                          the first device: founds a cluster
#   sudo devices/raspberry-pi/install.sh --cluster-key FILE       further devices: FILE is a copy of a member's
#                                                                  /var/lib/quorumd/cluster.key; it joins over mDNS
# Copies the project to /opt/quorumd, builds it there, creates the `quorumd` user, installs and starts the unit.
# Re-running it upgrades in place (the data in /var/lib/quorumd is kept).
set -euo pipefail

PREFIX=/opt/quorumd
UNIT=/etc/systemd/system/quorumd.service
SOURCE=$(cd "$(dirname "$0")/../.." && pwd)

DATA=/var/lib/quorumd

die() { echo "install.sh: $*" >&2; exit 1; }

KEY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster-key) [ $# -ge 2 ] || die "--cluster-key needs a FILE"; KEY=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -z "$KEY" ] || [ -r "$KEY" ] || die "cannot read the cluster key $KEY"

[ "$(id -u)" = 0 ] || die "run as root (sudo)"
command -v systemctl >/dev/null || die "systemd is required"
command -v node >/dev/null || die "Node.js >= 20.19 is required (e.g. apt-get install nodejs from NodeSource, or nvm)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js >= 20.19 is required, found $(node --version)"
command -v g++ >/dev/null && command -v make >/dev/null && command -v python3 >/dev/null \
  || die "better-sqlite3 compiles from source: apt-get install build-essential python3"

echo "copying $SOURCE to $PREFIX"
mkdir -p "$PREFIX"
tar -C "$SOURCE" --exclude=./node_modules --exclude=./dist --exclude=./data --exclude=./.git --exclude=./test-artifacts -cf - . | tar -C "$PREFIX" -xf -
echo "building (npm ci compiles better-sqlite3: a few minutes on a Pi)"
(cd "$PREFIX" && npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund)

if ! id quorumd >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/quorumd --no-create-home --shell /usr/sbin/nologin quorumd
fi
install -d -o quorumd -g quorumd -m 0700 "$DATA"
if [ -n "$KEY" ]; then
  [ -e "$DATA/cluster.key" ] && ! cmp -s "$KEY" "$DATA/cluster.key" && die "$DATA/cluster.key holds another cluster's key"
  install -o quorumd -g quorumd -m 0600 "$KEY" "$DATA/cluster.key"
fi
NODE=$(command -v node)
case "$NODE" in
  /home/*|/root/*) die "node is at $NODE, which the service cannot read (ProtectHome): install Node system-wide (NodeSource, or the official tarball in /usr/local)" ;;
esac
# The unit as shipped runs `node` from systemd's PATH; pin the one checked above.
sed "s#^ExecStart=/usr/bin/env node #ExecStart=$NODE #" "$SOURCE/devices/raspberry-pi/quorumd.service" > "$UNIT"
chmod 0644 "$UNIT"
systemctl daemon-reload
systemctl enable --now quorumd
sleep 2
systemctl --no-pager --lines=5 status quorumd || true
cat <<MSG

quorumd is running. Next:
  sudo -u quorumd node $PREFIX/bin/quorumd status --data-dir $DATA
  the status page: http://127.0.0.1:7401/ on the Pi (from a laptop: ssh -L 7401:127.0.0.1:7401 pi@<pi>)
  logs: journalctl -u quorumd -o cat -f
  settings: $DATA/quorumd.json (see node $PREFIX/bin/quorumd start --help), then systemctl restart quorumd
More devices: copy $DATA/cluster.key from this one and run install.sh --cluster-key FILE on each.
MSG
