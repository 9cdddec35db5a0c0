"""The one reader of Linux's /proc for the benchmarks: which process listens on a port,
and a process's memory, descriptors and CPU time. Elsewhere each answers None (or an
empty set): the figures are then not measured, never made up."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

PROC = Path("/proc")


def listening_inodes(port: int, proc: Path = PROC) -> set[str]:
    """The socket inodes listening on a TCP port (IPv4 and IPv6), from /proc/net/tcp*."""
    inodes: set[str] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            local, state, inode = columns[1], columns[3], columns[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def socket_inodes(pid: int, proc: Path = PROC) -> set[str]:
    """The inodes of the sockets a process holds open."""
    inodes: set[str] = set()
    try:
        for fd in (proc / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def parent_of(pid: int, proc: Path = PROC) -> int | None:
    stat = _stat_fields(pid, proc)
    return None if stat is None else int(stat[1])


def listening_pid(url_or_port: str | int, proc: Path = PROC) -> int | None:
    """A process listening on the URL's (or the) port, or None (no such process, no /proc).

    With several processes on one listening socket (``--workers N``), any one of them.
    """
    port = url_or_port if isinstance(url_or_port, int) else urlsplit(url_or_port).port
    if port is None:
        return None
    listening = listening_inodes(port, proc)
    if not listening:
        return None
    try:
        entries = [e.name for e in proc.iterdir() if e.name.isdigit()]
    except OSError:
        return None
    for name in sorted(entries, key=int):
        if socket_inodes(int(name), proc) & listening:
            return int(name)
    return None


def rss_kb(pid: int, proc: Path = PROC) -> int | None:
    """Resident memory in KiB (VmRSS), or None: gone, a zombie, or no /proc."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def fd_count(pid: int, proc: Path = PROC) -> int | None:
    """Open file descriptors, or None: gone, or no /proc."""
    try:
        return len(os.listdir(proc / str(pid) / "fd"))
    except OSError:
        return None


def cpu_seconds(pid: int, proc: Path = PROC) -> float | None:
    """User + system CPU seconds of one process, or None: gone, or no /proc."""
    stat = _stat_fields(pid, proc)
    return None if stat is None else _ticks(stat) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int, proc: Path = PROC) -> float | None:
    """User + system CPU seconds of every live process in a process group (None without
    /proc). A server started in a session of its own is its group, so this is its CPU time.

    CPU time per request barely moves when other work shares the machine, unlike req/s.
    """
    if not proc.is_dir():
        return None
    total = 0
    for stat in proc.glob("[0-9]*/stat"):
        fields = _fields(stat)
        if fields is not None and int(fields[2]) == pgid:  # pgrp
            total += _ticks(fields)
    return total / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int, proc: Path) -> list[str] | None:
    return _fields(proc / str(pid) / "stat")


def _fields(stat: Path) -> list[str] | None:
    """The fields of a /proc/PID/stat after "pid (comm) ": state first, then ppid, pgrp."""
    try:
        text = stat.read_text()
    except OSError:  # the process ended meanwhile
        return None
    return text[text.rindex(")") + 2 :].split()


def _ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15 of stat
