"""The seccomp filter of a session's kernel: a classic BPF program bwrap loads (`--seccomp FD`) before it starts
the kernel.

It refuses, with EPERM, the system calls a cell has no use for and that reach state shared with the host or
with other sessions: the kernel keyring (`add_key`, `keyctl`, `request_key`: keys outlive a session and are
found by uid), new namespaces (`unshare`, `setns`, `clone` with a `CLONE_NEW*` flag: no nested user
namespace), mounts, `bpf`, `perf_event_open`, `userfaultfd`, io_uring, `ptrace`, cross-process memory access,
module and kexec loading. `clone3` answers ENOSYS, so that the C library falls back to `clone`, whose flags
the filter can read. A system call of another ABI (i386 or x32 on x86_64) kills the process: their numbers
differ. The program is written by hand for x86_64 and aarch64 (no libseccomp in the server's environment);
on any other machine the kernel runs without one (`program` is None).
"""

from __future__ import annotations

import errno
import os
import platform
import struct

_LOAD_WORD = 0x20
_JUMP_EQUAL = 0x15
_JUMP_GREATER_EQUAL = 0x35
_JUMP_SET = 0x45
_RETURN = 0x06
_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000
_NR_OFFSET, _ARCH_OFFSET, _ARG0_OFFSET = 0, 4, 16
_X32_BIT = 0x40000000
_NEW_NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET."""

_REFUSED_NAMES = (
    "add_key", "keyctl", "request_key", "unshare", "setns", "mount", "umount2", "pivot_root", "mount_setattr",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
    "process_vm_writev", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "quotactl",
)

_ARCHITECTURES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "add_key": 248, "keyctl": 250, "request_key": 249, "unshare": 272, "setns": 308, "mount": 165,
        "umount2": 166, "pivot_root": 155, "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163, "quotactl": 179,
        "clone": 56, "clone3": 435,
    }),
    "aarch64": (0xC00000B7, {
        "add_key": 217, "keyctl": 219, "request_key": 218, "unshare": 97, "setns": 268, "mount": 40,
        "umount2": 39, "pivot_root": 41, "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "kexec_load": 104, "kexec_file_load": 294,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89, "quotactl": 60,
        "clone": 220, "clone3": 435,
    }),
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def _op(code: int, k: int, jump_true: int = 0, jump_false: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for `machine` (this one by default) as bwrap reads it; None where none is written."""
    name = (machine or platform.machine()).lower()
    found = _ARCHITECTURES.get(_ALIASES.get(name, name))
    if found is None:
        return None
    audit_arch, numbers = found
    refuse = _ret(_ERRNO | errno.EPERM)
    out = [_op(_LOAD_WORD, _ARCH_OFFSET), _op(_JUMP_EQUAL, audit_arch, 1, 0), _ret(_KILL_PROCESS),
           _op(_LOAD_WORD, _NR_OFFSET)]
    if audit_arch == _ARCHITECTURES["x86_64"][0]:
        out += [_op(_JUMP_GREATER_EQUAL, _X32_BIT, 0, 1), _ret(_KILL_PROCESS)]
    for syscall in _REFUSED_NAMES:
        out += [_op(_JUMP_EQUAL, numbers[syscall], 0, 1), refuse]
    out += [_op(_JUMP_EQUAL, numbers["clone3"], 0, 1), _ret(_ERRNO | errno.ENOSYS)]
    out += [_op(_JUMP_EQUAL, numbers["clone"], 0, 3), _op(_LOAD_WORD, _ARG0_OFFSET),
            _op(_JUMP_SET, _NEW_NAMESPACE_FLAGS, 0, 1), refuse]
    out += [_ret(_ALLOW)]
    return b"".join(out)


def _ret(value: int) -> bytes:
    return _op(_RETURN, value)


def descriptor() -> int | None:
    """A file descriptor holding this machine's filter, at its start, for bwrap `--seccomp` (the caller closes
    it once bwrap has started); None where there is no filter."""
    compiled = program()
    if compiled is None:
        return None
    fd = os.memfd_create("emulator-seccomp", 0)
    os.write(fd, compiled)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
