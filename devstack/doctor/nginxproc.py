"""The running nginx as the filesystem sees it: its worker user, what that user may open, and
the error log lines that say why a static request was refused."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

import psutil

from devstack.doctor.nginxconf import NginxConf

REASONS = ("Permission denied", "No such file or directory", "is forbidden", "Not a directory")


@dataclass(frozen=True)
class WorkerUser:
    name: str
    uid: int
    gids: tuple[int, ...]
    source: str  # "worker pid N" | "file:line" of `user` | "nginx's default"


def master_on(port: int | None) -> psutil.Process | None:
    """The nginx master listening on port (a worker's parent), when this user can see it."""
    if port is None:
        return None
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port or conn.pid is None:
            continue
        try:
            proc = psutil.Process(conn.pid)
            if "nginx" not in proc.name():
                continue
            parent = proc.parent()
            return parent if parent is not None and "nginx" in parent.name() else proc
        except psutil.Error:
            continue
    return None


def _user(name: str, group: str | None, source: str) -> WorkerUser | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    gid = entry.pw_gid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            pass
    extra = [g.gr_gid for g in grp.getgrall() if name in g.gr_mem]
    return WorkerUser(name, entry.pw_uid, tuple(dict.fromkeys([gid, *extra])), source)


def worker_user(conf: NginxConf | None, port: int | None) -> WorkerUser | None:
    """Who nginx's workers run as: the running worker process, else the config's `user`
    (only applied when the master runs as root), else nginx's default `nobody`."""
    master = master_on(port)
    if master is not None:
        try:
            workers = [c for c in master.children() if "nginx" in c.name()] or [master]
            proc = workers[0]
            uid = proc.uids().effective
            gids = [proc.gids().effective]
            status = Path(f"/proc/{proc.pid}/status").read_text(encoding="utf-8", errors="replace")
            for line in status.splitlines():
                if line.startswith("Groups:"):
                    gids += [int(g) for g in line.split()[1:]]
            name = pwd.getpwuid(uid).pw_name
            return WorkerUser(name, uid, tuple(dict.fromkeys(gids)), f"worker pid {proc.pid}")
        except (psutil.Error, OSError, KeyError, ValueError):
            pass
    if os.geteuid() != 0:
        return _user(pwd.getpwuid(os.geteuid()).pw_name, None, "this user (nginx not run as root)")
    directive = conf.root.child("user") if conf is not None else None
    if directive is not None and directive.args:
        group = directive.args[1] if len(directive.args) > 1 else None
        return _user(directive.args[0], group, directive.where)
    return _user("nobody", None, "nginx's default (no `user` directive)")


def _who(st: os.stat_result, user: WorkerUser) -> str:
    """The permission class the kernel applies to this user: u, g or o (never a union)."""
    if st.st_uid == user.uid:
        return "u"
    return "g" if st.st_gid in user.gids else "o"


def _may(st: os.stat_result, user: WorkerUser, want: int) -> bool:
    """want: 4 read, 1 search/execute — for owner, group or other as the kernel picks."""
    if user.uid == 0:
        return True
    shift = {"u": 6, "g": 3, "o": 0}[_who(st, user)]
    return (st.st_mode >> shift) & want == want


def _describe(path: Path, st: os.stat_result) -> str:
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{stat.filemode(st.st_mode)} {owner} {group} {path}"


@dataclass(frozen=True)
class Blocked:
    path: Path
    said: str  # "nobody has no search (x) permission on drwx------ root root /srv"
    chmod: str  # the mode change that lets the user pass, e.g. "o+x"


def blocked(path: Path, user: WorkerUser) -> Blocked | None:
    """The first component of path the user cannot pass: a folder without search (x)
    permission, or the file without read permission. None when nginx can open it."""
    path = Path(os.path.abspath(path))
    chain = [*reversed(path.parents), path]
    for i, part in enumerate(chain):
        try:
            st = part.stat()
        except OSError:
            return None  # does not exist: not a permission problem
        last = i == len(chain) - 1
        if stat.S_ISDIR(st.st_mode):
            want, verb, bits = (5, "read and search (r-x)", "rx") if last else (1, "search (x)", "x")
        else:
            want, verb, bits = 4, "read (r)", "r"
        if not _may(st, user, want):
            said = f"{user.name} has no {verb} permission on {_describe(part, st)}"
            return Blocked(part, said, f"{_who(st, user)}+{bits}")
    return None


def error_logs(conf: NginxConf | None, master: psutil.Process | None, prefix: Path | None) -> list[Path]:
    """The files nginx writes its error log to (stderr resolved through the master's fd 2)."""
    found: list[Path] = []
    names = [d.args[0] for d in (conf.all("error_log") if conf is not None else []) if d.args]
    if not names:
        names = ["logs/error.log"]
    for name in names:
        if name == "stderr" and master is not None:
            try:
                target = os.readlink(f"/proc/{master.pid}/fd/2")
            except OSError:
                continue
            if target.startswith("/") and Path(target).is_file():
                found.append(Path(target))
        elif name.startswith("/"):
            found.append(Path(name))
        elif prefix is not None and not name.startswith(("syslog:", "memory:")):
            found.append(prefix / name)
    return [p for p in dict.fromkeys(found) if p.is_file()]


def lines_about(logs: list[Path], needle: str, limit: int = 3) -> list[tuple[str, str]]:
    """(line, file) of the last error-log lines naming needle (a path or a URI) with a reason."""
    hits: list[tuple[str, str]] = []
    for log in logs:
        try:
            with open(log, "rb") as handle:
                handle.seek(max(0, os.path.getsize(log) - 256 * 1024))
                tail = handle.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        hits += [(ln.strip(), str(log)) for ln in tail if needle in ln and any(r in ln for r in REASONS)]
    return hits[-limit:]
