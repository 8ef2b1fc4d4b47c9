"""``python -m tooling.bench.ptrace_probe PID``: may this process read PID's memory, as py-spy must?

py-spy reads a Python process's memory with ``process_vm_readv``, which the
kernel allows only to a process that may ptrace the target: the same user
under Yama's ``ptrace_scope`` (whose default, 1, admits only a target's
ancestors), or CAP_SYS_PTRACE; a container's seccomp profile may refuse the
call outright. The bench runs this probe as a child of its own, a sibling of
the target as each py-spy is, so it gets the answer py-spy got: the bench
itself, the target's parent, would be let in where py-spy is not.

Exit code 0: permitted; 1: not permitted; 2: could not tell.
"""

from __future__ import annotations

import ctypes
import errno
import sys
from collections.abc import Sequence

PERMITTED, NOT_PERMITTED, UNKNOWN = 0, 1, 2


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


def can_read_memory(pid: int) -> bool | None:
    """Whether 8 bytes of ``pid``'s first mapping can be read; None when that cannot be told."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            start = int(maps.readline().split("-", 1)[0], 16)
    except PermissionError:
        return False
    except (OSError, ValueError):  # no such process, no /proc (not Linux)
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(8)
    local = _IoVec(ctypes.cast(buffer, ctypes.c_void_p), 8)
    remote = _IoVec(start, 8)
    if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) >= 0:
        return True
    if ctypes.get_errno() in (errno.EPERM, errno.EACCES):
        return False
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        return UNKNOWN
    permitted = can_read_memory(int(args[0]))
    return UNKNOWN if permitted is None else PERMITTED if permitted else NOT_PERMITTED


if __name__ == "__main__":
    sys.exit(main())
