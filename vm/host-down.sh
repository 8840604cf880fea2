#!/bin/bash
# Undo host-up.sh and anything the tier's VMs left: domains with our prefix, our network and
# pool, the daemons host-up.sh started (by their recorded PIDs), the namespace. Never fails.
RUN=${DEVSTACK_VM_RUN:-/tmp/devstack-vm-run}
[ -f "$RUN/env" ] && . "$RUN/env"
V="virsh -c qemu:///system"
PREFIX=${DEVSTACK_LIBVIRT_PREFIX:-devstack-$DEVSTACK_VM_NS-}
if $V version >/dev/null 2>&1; then
  for d in $($V list --all --name 2>/dev/null | grep "^$PREFIX"); do
    $V destroy "$d" >/dev/null 2>&1; $V undefine "$d" --remove-all-storage >/dev/null 2>&1 || $V undefine "$d" >/dev/null 2>&1
  done
  if [ -n "${DEVSTACK_LIBVIRT_NETWORK:-}" ]; then
    $V net-destroy "$DEVSTACK_LIBVIRT_NETWORK" >/dev/null 2>&1; $V net-undefine "$DEVSTACK_LIBVIRT_NETWORK" >/dev/null 2>&1
  fi
  if [ -n "${DEVSTACK_LIBVIRT_POOL:-}" ]; then
    for vol in $($V vol-list "$DEVSTACK_LIBVIRT_POOL" 2>/dev/null | awk 'NR>2 && $1 {print $1}'); do
      $V vol-delete --pool "$DEVSTACK_LIBVIRT_POOL" "$vol" >/dev/null 2>&1
    done
    $V pool-destroy "$DEVSTACK_LIBVIRT_POOL" >/dev/null 2>&1; $V pool-undefine "$DEVSTACK_LIBVIRT_POOL" >/dev/null 2>&1
  fi
fi
for d in libvirtd virtlogd; do
  [ -s "$RUN/$d.pid" ] || continue
  pid=$(cat "$RUN/$d.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$RUN/$d.pid"
done
[ -n "${DEVSTACK_VM_NS:-}" ] && ip netns del "$DEVSTACK_VM_NS" 2>/dev/null
rm -rf "$RUN/pool" "$RUN/env"
echo "vm tier down; left: $(ps -eo pid,comm | grep -E 'libvirtd|virtlogd|qemu-system|dnsmasq' | tr -s ' ' | tr '\n' ';')"
exit 0
