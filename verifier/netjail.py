"""Starts a program with no network and no sight of other servers' unix sockets: the local sandbox's jail.

Run as a script (`python3 -I -S netjail.py SPEC… -- PROGRAM ARG…`, standard library only: it starts
before the agent's packages could be imported), it

1. lists the unix sockets bound on this host (/proc/net/unix, read before leaving the network),
2. enters a new user namespace, a new network namespace (nothing but its own loopback: no host, no port
   is reachable) and a new mount namespace. As root the user namespace maps root and the sandbox account
   to themselves, so that no process of the account can look through /proc/PID/root of one outside it;
   otherwise it maps the agent's own uid only, as `unshare --user --net --mount` does,
3. in the mount namespace, covers the directories where servers put their sockets (/tmp, /run, …) with
   empty tmpfs, covers every other socket file it listed with /dev/null, and puts back the `keep`
   directories (the sandbox's own, its binaries) at their paths,
4. drops to the sandbox account (as root) and executes the program, which keeps this process's pid.

A unix socket the program binds in a kept directory stays reachable from the agent: the directory is
the same one on disk. SPEC is `UID GID KEEP…` (UID and GID "-" when the agent is not root, KEEP the
directories to keep). With `--probe HOST PORT SOCKET` instead of `-- PROGRAM…` it prints what a TCP
connection to HOST:PORT and one to the unix socket got (`verifier doctor` tries the jail this way). Any
failure exits 70 with one line on stderr. Only ctypes, os, stat and sys are imported, so that the jail
adds little to the sandbox's start (~20 ms on an idle host).
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
AF_UNIX, AF_INET, SOCK_STREAM, SOCK_DGRAM = 1, 2, 1, 2
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


def _call(result: int, what: str) -> int:
    if result < 0:
        raise JailError(f"{what}: {os.strerror(ctypes.get_errno())}")
    return result


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encoded = [value.encode() if value else None for value in (source, target, kind)]
    options = data.encode() if data else None
    _call(_libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), options), f"mount {target}")


def _write(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


def bound_sockets() -> list[str]:
    """Returns the paths of the unix sockets bound in this network namespace (abstract ones excluded)."""
    try:
        descriptor = os.open("/proc/net/unix", os.O_RDONLY)
    except OSError:
        return []
    chunks = []
    try:
        while chunk := os.read(descriptor, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    rows = [line.split(None, 7) for line in b"".join(chunks).decode(errors="replace").splitlines()[1:]]
    return sorted({row[7] for row in rows if len(row) == 8 and row[7].startswith("/")})


def _enter_namespaces(account: tuple[int, int] | None) -> None:
    """Enters new user, network and mount namespaces. As root, the user namespace maps root and the
    sandbox account to themselves: the account's processes then cannot look through /proc/PID/root of
    any process outside (another process of the same account, not jailed, would lend them its view of
    the host). A process cannot grant itself a mapping of other ids, so a child left outside writes it.
    Without root, the namespace maps the agent's own uid only. Raises JailError, OSError."""
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET
    if os.geteuid() != 0 or account is None:
        uid, gid = os.geteuid(), os.getegid()
        _call(_libc.unshare(flags), "unshare (user, network and mount namespaces)")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        return
    uid, gid = account
    jailed = os.getpid()
    ready_read, ready_write = os.pipe()
    writer = os.fork()
    if writer == 0:  # the child: outside the namespaces, root, writes the jailed process's maps
        os.close(ready_write)
        status = 1
        if os.read(ready_read, 1) == b"u":
            try:
                _write(f"/proc/{jailed}/uid_map", "0 0 1\n" + (f"{uid} {uid} 1\n" if uid else ""))
                _write(f"/proc/{jailed}/gid_map", "0 0 1\n" + (f"{gid} {gid} 1\n" if gid else ""))
                status = 0
            except OSError:
                pass
        os._exit(status)
    os.close(ready_read)
    try:
        _call(_libc.unshare(flags), "unshare (user, network and mount namespaces)")
        os.write(ready_write, b"u")
    finally:
        os.close(ready_write)
        _, status = os.waitpid(writer, 0)
    if status != 0:
        raise JailError("writing the user namespace's uid and gid maps failed")


def _loopback_up() -> None:
    """Brings up the namespace's own loopback (PostgreSQL before 15 sends its statistics over it);
    a failure is ignored: PostgreSQL 15+ does not need it."""
    descriptor = _libc.socket(AF_INET, SOCK_DGRAM, 0)
    if descriptor < 0:
        return
    request = ctypes.create_string_buffer(b"lo", 40)  # struct ifreq: the name, then the flags (a short)
    if _libc.ioctl(descriptor, SIOCGIFFLAGS, request) == 0:
        flags = ctypes.c_short.from_buffer(request, 16)
        flags.value |= IFF_UP
        _libc.ioctl(descriptor, SIOCSIFFLAGS, request)
    os.close(descriptor)


def _inside(path: str, directories: list[str]) -> bool:
    return any(path == directory or path.startswith(directory.rstrip("/") + "/") for directory in directories)


def build(keep: list[str], account: tuple[int, int] | None, hide: tuple[str, ...] = HIDDEN_DIRECTORIES) -> None:
    """Builds the jail around this process, keeping the directories `keep`, for `account` (uid, gid) to run
    in it (None: the agent's own user). Raises JailError, OSError."""
    keep = [os.path.realpath(path) for path in keep]
    sockets = [path for path in bound_sockets() if not _inside(path, keep)]
    _enter_namespaces(account)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # opened inside the new mount namespace (a bind mount's source must be in it), before anything is covered
    kept = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in keep]
    _loopback_up()
    hidden: set[str] = set()
    for directory in hide:
        real = os.path.realpath(directory)
        if real not in hidden and os.path.isdir(real):  # noqa: PTH112 - pathlib would double the start-up
            _mount("tmpfs", real, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
            hidden.add(real)
    for path in sockets:
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
        except OSError:
            continue  # under a covered directory, or gone
        _mount("/dev/null", path, None, MS_BIND)
    umask = os.umask(0o022)  # the directories leading to a kept one, in a covering tmpfs: traversable by all
    try:
        for path, descriptor in kept:
            os.makedirs(path, mode=0o755, exist_ok=True)  # noqa: PTH103
            _mount(f"/proc/self/fd/{descriptor}", path, None, MS_BIND | MS_REC)
            os.close(descriptor)
    finally:
        os.umask(umask)


def _drop(uid: str, gid: str) -> None:
    if os.geteuid() == 0 and uid != "-" and gid != "-":
        os.setgroups([])
        os.setgid(int(gid))
        os.setuid(int(uid))


def probe(host: str, port: int, socket_path: str) -> dict[str, str]:
    """Returns what a TCP connection to host:port and one to the unix socket got ("connected" or the error).
    `socket` must be imported before the jail is built."""
    import socket  # only the doctor probes (before the jail: Python's own files may be under a covered directory)

    answers = {}
    for name, family, address in (("tcp", AF_INET, (host, port)), ("unix", AF_UNIX, socket_path)):
        with socket.socket(family, SOCK_STREAM) as attempt:
            attempt.settimeout(5)
            try:
                attempt.connect(address)
                answers[name] = "connected"
            except OSError as error:
                answers[name] = error.strerror or str(error)
    return answers


def main(argv: list[str]) -> int:
    """Builds the jail and executes the program after `--` (or probes). Returns FAILED when it cannot."""
    separator = "--" if "--" in argv else "--probe"
    if len(argv) < 3 or separator not in argv:
        print("usage: netjail.py UID GID KEEP… (-- PROGRAM ARG… | --probe HOST PORT SOCKET)", file=sys.stderr)
        return FAILED
    split = argv.index(separator)
    uid, gid, keep, rest = argv[1], argv[2], argv[3:split], argv[split + 1 :]
    cwd = os.getcwd()  # noqa: PTH109
    if separator == "--probe":
        import socket  # noqa: F401 - now: Python's own files may be under a covered directory
    try:
        build(keep, None if "-" in (uid, gid) else (int(uid), int(gid)))
        _drop(uid, gid)
        os.chdir(cwd)  # through the kept directory, not the one now covered
    except (JailError, OSError) as error:
        remedy = (
            " (run the agent as root, allow unprivileged user namespaces, or set verify.allow_network: true "
            "to run it unisolated)"
            if str(error).startswith("unshare")
            else ""
        )
        print(f"the sandbox could not be cut off from the network: {error}{remedy}", file=sys.stderr)
        return FAILED
    if separator == "--probe":
        answers = probe(rest[0], int(rest[1]), rest[2])
        print(" ".join(f"{name}={answer.replace(' ', '_')}" for name, answer in answers.items()))
        return 0
    try:
        os.execv(rest[0], rest)
    except OSError as error:
        print(f"could not start {rest[0]}: {error.strerror}", file=sys.stderr)
    return FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
