"""Which filesystem a path is on: shared folders need sendfile off and polling watchers."""

from __future__ import annotations

from pathlib import Path

import psutil

# Filesystems whose change events do not reach inotify and whose pages sendfile may serve stale.
SHARED_FSTYPES = (
    "vboxsf",
    "nfs",
    "nfs4",
    "9p",
    "virtiofs",
    "cifs",
    "smbfs",
    "smb3",
    "fuse",
    "fuseblk",
    "fuse.sshfs",
    "fuse.vmhgfs-fuse",
    "prl_fs",
    "vmhgfs",
)


def fstype(path: Path) -> str:
    """The filesystem type of the mount holding path ("unknown" if it cannot be told)."""
    target = path.resolve()
    best, best_type = "", "unknown"
    try:
        partitions = psutil.disk_partitions(all=True)
    except OSError:
        return best_type
    for part in partitions:
        mount = part.mountpoint.rstrip("/") or "/"
        inside = str(target) == mount or str(target).startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, part.fstype
    return best_type


def is_shared(fs: str) -> bool:
    return fs in SHARED_FSTYPES or fs.startswith("fuse.") or fs.startswith("nfs")
