#!/bin/bash
# Build the libvirt test box for the real-VM tier: Debian bookworm (minbase), systemd, sshd, nginx,
# rsync, python3, and devstack's Python dependencies as wheels under /opt/devstack/site (the guest
# has no network, so nothing can be installed at `vagrant up`). No bootloader: the box boots its
# kernel directly. No loop devices: the ext4 image is filled straight from the rootfs folder.
#
# The guest's Python packages are devstack's own dependencies plus its [app] extra, read from
# pyproject.toml, so a new dependency reaches the box without editing this script.
# Cached: the box is named by the hash of this script and that package list, so a rebuild
# happens only when either changes. Prints the path of the box on its last line.
set -euo pipefail
CACHE=${DEVSTACK_VM_CACHE:-/var/cache/devstack-vm}
PYTHON=${PYTHON:-python3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SIZE_G=4
PYPKGS=$("$PYTHON" -c '
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(" ".join(project["dependencies"] + project["optional-dependencies"]["app"]))
' "$REPO/pyproject.toml")
HASH=$( { cat "$0"; echo "$PYPKGS"; } | sha256sum | cut -c1-12)
BOX="$CACHE/devstack-test-$HASH.box"
if [ -s "$BOX" ]; then echo "$BOX"; exit 0; fi

WORK="$CACHE/build-$HASH"
rm -rf "$WORK"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
KEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1)
[ -n "$KEY" ] || { echo "vagrant's insecure public key not found: apt-get install vagrant" >&2; exit 1; }

# Guest Python is bookworm's 3.11: fetch manylinux wheels for cp311 from the package index.
PLAT="--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64"
# shellcheck disable=SC2086
"$PYTHON" -m pip download -q $PLAT -d "$WORK/wheels" $PYPKGS

# The machine's own Debian sources (deb822), one "deb URI SUITE main" line per suite.
mapfile -t SOURCES < <(awk '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) print "deb " u " " $i " main"}' \
  /etc/apt/sources.list.d/debian.sources)
DEBS=systemd-sysv,udev,iproute2,openssh-server,sudo,rsync,python3,nginx,linux-image-amd64,initramfs-tools,procps,curl
mmdebstrap --variant=minbase --include="$DEBS" \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='echo devstack-box > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 devstack-box\n" > "$1/etc/hosts"' \
  --customize-hook='printf "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n" > "$1/etc/fstab"' \
  --customize-hook='printf "[Match]\nName=eth*\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/10-dhcp.network"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd ssh' \
  --customize-hook='chroot "$1" systemctl disable nginx' \
  --customize-hook='chroot "$1" useradd -m -s /bin/bash -G sudo vagrant' \
  --customize-hook='echo "vagrant:vagrant" | chroot "$1" chpasswd' \
  --customize-hook='echo "vagrant ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/vagrant"; chmod 0440 "$1/etc/sudoers.d/vagrant"' \
  --customize-hook="install -d -m 700 \"\$1/home/vagrant/.ssh\"; install -m 600 $KEY \"\$1/home/vagrant/.ssh/authorized_keys\"; chroot \"\$1\" chown -R vagrant:vagrant /home/vagrant/.ssh" \
  --customize-hook='printf "UseDNS no\nGSSAPIAuthentication no\n" > "$1/etc/ssh/sshd_config.d/vagrant.conf"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*; printf "[Unit]\nDescription=regenerate ssh host keys\nBefore=ssh.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n[Install]\nWantedBy=multi-user.target\n" > "$1/etc/systemd/system/regen-ssh-keys.service"; chroot "$1" systemctl enable regen-ssh-keys' \
  --customize-hook='chroot "$1" systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer 2>/dev/null || true' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  bookworm "$ROOT" "${SOURCES[@]}"

# devstack's dependencies, installed from the wheels fetched above, for the guest's interpreter.
# shellcheck disable=SC2086
"$PYTHON" -m pip install -q --no-warn-conflicts --no-index --find-links "$WORK/wheels" $PLAT --target "$ROOT/opt/devstack/site" $PYPKGS
echo "/opt/devstack/site" > "$ROOT/usr/lib/python3/dist-packages/devstack-site.pth"

OUT="$WORK/box"; mkdir -p "$OUT"
cp "$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -1)" "$OUT/vmlinuz"
cp "$(ls "$ROOT"/boot/initrd.img-* | sort -V | tail -1)" "$OUT/initrd.img"
mkfs.ext4 -q -F -L rootfs -d "$ROOT" "$WORK/root.raw" "${SIZE_G}G"
qemu-img convert -O qcow2 "$WORK/root.raw" "$OUT/box.img"
rm -f "$WORK/root.raw"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$SIZE_G" > "$OUT/metadata.json"
cat > "$OUT/Vagrantfile" <<'VF'
# Box defaults: direct kernel boot (the image has no bootloader).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    here = File.dirname(__FILE__)
    libvirt.kernel = File.join(here, "vmlinuz")
    libvirt.initrd = File.join(here, "initrd.img")
    libvirt.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
    libvirt.disk_bus = "virtio"
  end
end
VF
( cd "$OUT" && tar -czf "$BOX.tmp" metadata.json Vagrantfile box.img vmlinuz initrd.img )
mv "$BOX.tmp" "$BOX"
# Older builds of the box are dead weight (~270 MB each).
find "$CACHE" -maxdepth 1 -name 'devstack-test-*.box' ! -name "$(basename "$BOX")" -delete
echo "$BOX"
