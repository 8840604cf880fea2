"""Which filesystem a path is on: shared folders need sendfile off and polling watchers."""

from __future__ import annotations

import re
from pathlib import Path

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
        partitions = mounts()
    except OSError:
        return best_type
    for mount, kind in partitions:
        mount = mount.rstrip("/") or "/"
        inside = str(target) == mount or str(target).startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, kind
    return best_type


def mounts(table: str = "/proc/self/mounts") -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount. Linux: the kernel's table read directly (psutil's
    import alone costs ~10 ms on the path to gunicorn's start); elsewhere psutil."""
    try:
        with open(table, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        import psutil

        return [(part.mountpoint, part.fstype) for part in psutil.disk_partitions(all=True)]
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            out.append((_unescape(fields[1]), fields[2]))
    return out


def _unescape(field: str) -> str:
    # The table writes a space, tab, newline and backslash in a path as \040 \011 \012 \134.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_shared(fs: str) -> bool:
    return fs in SHARED_FSTYPES or fs.startswith("fuse.") or fs.startswith("nfs")
