"""Starts a program with no network and no sight of other servers' unix sockets: the local sandbox's jail.

Run as a script (`python3 -I -S netjail.py SPEC -- PROGRAM ARG…`, standard library only: it starts
before the agent's packages could be imported), it

1. lists the unix sockets bound on this host (/proc/net/unix, read before leaving the network),
2. enters a new network namespace (nothing but its own loopback: no host, no port is reachable) and a
   new mount namespace (as root; otherwise inside a new user namespace that maps only the agent's own
   uid, as `unshare --user --net --mount` does),
3. in the mount namespace, covers the directories where servers put their sockets (/tmp, /run, …) with
   empty tmpfs, covers every other socket file it listed with /dev/null, and puts back the `keep`
   directories (the sandbox's own, its binaries) at their paths,
4. drops to the sandbox account (as root) and executes the program, which keeps this process's pid.

A unix socket the program binds in a kept directory stays reachable from the agent: the directory is
the same one on disk. SPEC is JSON: {"uid": int|null, "gid": int|null, "keep": [path], "hide": [path]};
with "probe": [host, port, socket path] instead of a program, it prints what a connection to each got
(`verifier doctor` tries the jail this way). Any failure exits 70 with one line on stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import socket
import stat
import struct
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
FAILED = 70

# where PostgreSQL (and other servers) put sockets, and where a dump has no business looking
HIDDEN_DIRECTORIES = (
    "/tmp",
    "/var/tmp",
    "/run",
    "/var/run",
    "/dev/shm",
    "/home",
    "/root",
    "/srv",
    "/mnt",
    "/media",
    "/var/lib/postgresql",
)

_libc = ctypes.CDLL(None, use_errno=True)


class JailError(Exception):
    """A step of building the jail failed; the message names it."""


def _call(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise JailError(f"{what}: {os.strerror(number)}")


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    _call(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            kind.encode() if kind else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def bound_sockets() -> list[str]:
    """Returns the paths of the unix sockets bound in this network namespace (abstract ones excluded)."""
    try:
        lines = Path("/proc/net/unix").read_text(encoding="utf-8", errors="replace").splitlines()[1:]
    except OSError:
        return []
    paths = [line.split(None, 7)[7] for line in lines if len(line.split(None, 7)) == 8]
    return sorted({path for path in paths if path.startswith("/")})


def _enter_namespaces(as_root: bool) -> None:
    if as_root:
        _call(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare (network and mount namespaces)")
        return
    uid, gid = os.geteuid(), os.getegid()
    _call(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET), "unshare (user, network and mount namespaces)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        Path(f"/proc/self/{name}").write_text(text, encoding="ascii")


def _loopback_up() -> None:
    """Brings up the namespace's own loopback (PostgreSQL before 15 sends its statistics over it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _inside(path: str, directories: list[str]) -> bool:
    return any(path == directory or path.startswith(directory.rstrip("/") + "/") for directory in directories)


def build(spec: dict[str, object]) -> None:
    """Builds the jail around this process. Raises JailError, OSError."""
    keep = [os.path.realpath(str(path)) for path in spec.get("keep", [])]  # type: ignore[attr-defined]
    sockets = [path for path in bound_sockets() if not _inside(path, keep)]
    _enter_namespaces(as_root=os.geteuid() == 0)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # opened inside the new mount namespace (a bind mount's source must be in it), before anything is covered
    kept = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in keep]
    with contextlib.suppress(OSError):  # PostgreSQL 15+ does not need it; without it nothing answers inside
        _loopback_up()
    hidden: set[str] = set()
    for directory in spec.get("hide", HIDDEN_DIRECTORIES):  # type: ignore[attr-defined]
        real = os.path.realpath(str(directory))
        if real in hidden or not Path(real).is_dir():
            continue
        _mount("tmpfs", real, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        hidden.add(real)
    for path in sockets:
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
        except OSError:
            continue  # under a covered directory, or gone
        _mount("/dev/null", path, None, MS_BIND)
    for path, descriptor in kept:
        Path(path).mkdir(mode=0o755, parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{descriptor}", path, None, MS_BIND | MS_REC)
        os.close(descriptor)


def _drop(spec: dict[str, object]) -> None:
    uid, gid = spec.get("uid"), spec.get("gid")
    if os.geteuid() == 0 and isinstance(uid, int) and isinstance(gid, int):
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)


def probe(host: str, port: int, socket_path: str) -> dict[str, str]:
    """Returns what a TCP connection to host:port and one to the unix socket got ("connected" or the error)."""
    answers = {}
    for name, family, address in (
        ("tcp", socket.AF_INET, (host, port)),
        ("unix", socket.AF_UNIX, socket_path),
    ):
        with socket.socket(family, socket.SOCK_STREAM) as attempt:
            attempt.settimeout(5)
            try:
                attempt.connect(address)
                answers[name] = "connected"
            except OSError as error:
                answers[name] = error.strerror or str(error)
    return answers


def main(argv: list[str]) -> int:
    """Builds the jail and executes argv's program (or probes). Returns FAILED when it cannot."""
    if len(argv) < 2:
        print("usage: netjail.py SPEC [-- PROGRAM ARG…]", file=sys.stderr)
        return FAILED
    spec = json.loads(argv[1])
    cwd = Path.cwd()
    try:
        build(spec)
        _drop(spec)
        os.chdir(cwd)  # through the kept directory, not the one now covered
    except (JailError, OSError) as error:
        print(f"the sandbox could not be cut off from the network: {error}", file=sys.stderr)
        return FAILED
    if "probe" in spec:
        host, port, socket_path = spec["probe"]
        print(json.dumps(probe(host, int(port), socket_path)))
        return 0
    program = argv[argv.index("--") + 1 :]
    try:
        os.execv(program[0], program)
    except OSError as error:
        print(f"could not start {program[0]}: {error.strerror}", file=sys.stderr)
    return FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
