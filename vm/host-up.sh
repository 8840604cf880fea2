#!/bin/bash
# Host side of the real-VM tier: install the packages, then start libvirt (without systemd)
# inside a network namespace this run creates, so every VM address exists only in there.
# Idempotent. Writes the names it used to $DEVSTACK_VM_RUN/env (sourced by host-down.sh).
#   DEVSTACK_VM_NS       network namespace (default devstack-vm-$$)
#   DEVSTACK_VM_RUN      run folder: pool, pids, env (default /tmp/devstack-vm-run)
set -euo pipefail
NS=${DEVSTACK_VM_NS:-devstack-vm-$$}
RUN=${DEVSTACK_VM_RUN:-/tmp/devstack-vm-run}
POOL=${DEVSTACK_LIBVIRT_POOL:-devstack-pool-$NS}
NET=${DEVSTACK_LIBVIRT_NETWORK:-devstack-net-$NS}
mkdir -p "$RUN"

need=()
command -v vagrant >/dev/null || need+=(vagrant)
ls -d /usr/share/rubygems-integration/all/gems/vagrant-libvirt-* >/dev/null 2>&1 || need+=(vagrant-libvirt)
command -v libvirtd >/dev/null || need+=(libvirt-daemon-system)
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v rsync >/dev/null || need+=(rsync)
command -v ssh >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >"$RUN/apt.log" 2>&1 \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >"$RUN/apt.log" 2>&1; }
fi

# libvirt runs QEMU as root with no security driver and no cgroups: there is no systemd here.
if ! grep -q '^# devstack-vm-tier' /etc/libvirt/qemu.conf; then
  printf '# devstack-vm-tier\nuser = "root"\ngroup = "root"\nsecurity_driver = "none"\ncgroup_controllers = [ ]\n' \
    >> /etc/libvirt/qemu.conf
fi

ip netns list | grep -qw "$NS" || ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ns_inode=$(stat -L -c %i "/run/netns/$NS")

# A daemon already running elsewhere would put the VM's network outside our namespace: refuse.
for d in virtlogd libvirtd; do
  if [ -s "/run/$d.pid" ] && kill -0 "$(cat "/run/$d.pid")" 2>/dev/null; then
    pid=$(cat "/run/$d.pid")
    if [ "$(stat -L -c %i "/proc/$pid/ns/net")" != "$ns_inode" ]; then
      echo "$d (pid $pid) already runs outside namespace $NS — stop it first" >&2; exit 1
    fi
  else
    rm -f "/run/$d.pid"
    ip netns exec "$NS" "$d" -d
    for _ in $(seq 40); do [ -s "/run/$d.pid" ] && break; sleep 0.25; done
    echo "$(cat "/run/$d.pid")" > "$RUN/$d.pid"  # ours: host-down.sh stops exactly this PID
  fi
done
for _ in $(seq 40); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.25; done

mkdir -p "$RUN/pool"
if ! virsh -c qemu:///system pool-info "$POOL" >/dev/null 2>&1; then
  virsh -c qemu:///system pool-define-as "$POOL" dir --target "$RUN/pool" >/dev/null
  virsh -c qemu:///system pool-start "$POOL" >/dev/null
fi
cat > "$RUN/env" <<ENV
export DEVSTACK_VM_NS=$NS
export DEVSTACK_VM_RUN=$RUN
export DEVSTACK_LIBVIRT_POOL=$POOL
export DEVSTACK_LIBVIRT_NETWORK=$NET
export DEVSTACK_LIBVIRT_PREFIX=devstack-$NS-
export LIBVIRT_DEFAULT_URI=qemu:///system
ENV
echo "libvirtd $(cat /run/libvirtd.pid), virtlogd $(cat /run/virtlogd.pid), netns $NS, pool $POOL"
