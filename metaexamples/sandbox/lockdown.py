"""Kernel-level restrictions a program's process puts on itself before the program runs.

Standard library only: this module is imported inside the sandbox worker (run as a plain script
under bubblewrap, without the project on sys.path) as well as by the host.

Prepared before fork (the Landlock ruleset, the assembled filter) and applied in the program's
own process, in this order, by `Restrictions.apply`:

- no_dumpable, then `drop_capabilities`: empty effective/permitted/inheritable sets, so a program
  started by root is uid 0 without privilege (no chown, mknod, mount, settimeofday, raw I/O ...).
  A pool worker drops its own at start, so its forks inherit none.
- `set_rlimits`: address space, CPU seconds, file size, open files, no core files.
- Landlock (Linux >= 5.13): the filesystem becomes read-only and limited to the Python
  installation, /usr and the shared libraries; writes only inside the program's own directory;
  TCP bind/connect denied (ABI >= 4); signals and abstract unix sockets scoped to the program
  (ABI >= 6). Denied accesses fail with EACCES -> the program sees PermissionError.
- seccomp (x86_64, aarch64): a syscall filter, a binary search on the call number. Process creation (fork, vfork, clone
  without CLONE_THREAD), exec, every socket, ptrace and friends, mount/namespace calls, kernel
  modules, bpf, io_uring, chmod/chown/utime/setxattr (Landlock does not cover metadata), readlink,
  changing session or process group, signalling any process but itself (also through fcntl's and
  ioctl's signal owner), System V IPC and POSIX message queues, inotify/fanotify/dnotify, flock
  and fcntl record locks and leases fail with EPERM; reading extended attributes fails with
  ENOTSUP. Threads stay allowed. A syscall from a foreign ABI (x32, i386) kills the process.

Why errno rather than killing the process: the program sees an ordinary PermissionError, which
the runner reports as `forbidden` when uncaught, and library code that probes (e.g.
`ctypes.util.find_library` spawning a helper) degrades instead of crashing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct

# ----------------------------------------------------------------------------------- capabilities

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2


def prctl(option: int, arg2: int = 0) -> None:
    if _libc.prctl(option, arg2, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def drop_capabilities() -> None:
    """Uid 0 keeps owning files, but without capabilities; a no-op for an unprivileged user."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


# ---------------------------------------------------------------------------------------- rlimits


def vm_size_bytes() -> int:
    """Current address-space size: the memory limit is counted on top of the interpreter's own."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return int(os.read(fd, 256).split()[0]) * _PAGE_SIZE
        finally:
            os.close(fd)
    except OSError:
        return 64 << 20


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def set_rlimits(memory_bytes: int, cpu_seconds: int, file_bytes: int, open_files: int = 64) -> None:
    """Soft == hard everywhere: without CAP_SYS_RESOURCE the program cannot raise them again."""
    for limit, value in (
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, open_files),
        (resource.RLIMIT_FSIZE, file_bytes),
        # SIGXCPU at the soft limit (reported as timeout), SIGKILL one second later.
        (resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1)),
        (resource.RLIMIT_AS, memory_bytes),
    ):
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.setrlimit(limit, (soft, hard))


# --------------------------------------------------------------------------------------- landlock

_NR_LANDLOCK_CREATE_RULESET, _NR_LANDLOCK_ADD_RULE, _NR_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_MAKE_CHAR, _FS_MAKE_BLOCK = 1 << 6, 1 << 11
_FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when unsupported or disabled."""
    abi = _libc.syscall(_NR_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= 1 << 13  # REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def landlock_ruleset(abi: int, read_paths: list[str], device_paths: list[str], write_dir: str) -> int:
    """A ruleset fd: read-only `read_paths`, read/write `device_paths` (files), full access below
    `write_dir` (the directory's inode: it must not be replaced while the ruleset is in use)."""
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0,
                        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _libc.syscall(_NR_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    file_rights = _FS_READ_FILE | _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    # No device nodes and no exec even inside the program's own directory.
    dir_rights = handled & ~(_FS_MAKE_CHAR | _FS_MAKE_BLOCK | _FS_EXECUTE | _FS_IOCTL_DEV)
    rules = [(p, _FS_READ_FILE | _FS_READ_DIR) for p in read_paths]
    rules += [(p, file_rights) for p in device_paths]
    rules.append((write_dir, dir_rights))
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this machine does not have
            try:
                if not os.path.isdir(path):
                    rights &= _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_EXECUTE
                rule = _PathBeneath(rights & handled, fd)
                if _libc.syscall(_NR_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset),
                                 ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def landlock_restrict(ruleset: int) -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if _libc.syscall(_NR_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")


# ---------------------------------------------------------------------------------------- seccomp

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# name: (x86_64, aarch64); None where the architecture has no such call.
_SYSCALLS = {
    "fork": (57, None), "vfork": (58, None), "clone": (56, 220), "clone3": (435, 435),
    "execve": (59, 221), "execveat": (322, 281),
    "socket": (41, 198), "socketpair": (53, 199),
    "kill": (62, 129), "tgkill": (234, 131), "tkill": (200, 130),
    "rt_sigqueueinfo": (129, 138), "rt_tgsigqueueinfo": (297, 240),
    "pidfd_open": (434, 434), "pidfd_send_signal": (424, 424), "pidfd_getfd": (438, 438),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "process_madvise": (440, 440), "kcmp": (312, 272),
    "setsid": (112, 157), "setpgid": (109, 154),
    "prlimit64": (302, 261), "setpriority": (141, 140), "ioprio_set": (251, 30),
    "sched_setaffinity": (203, 122), "sched_setparam": (142, 118), "sched_setscheduler": (144, 119),
    "sched_setattr": (314, 274), "migrate_pages": (256, 238), "move_pages": (279, 239),
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "reboot": (169, 142), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "quotactl": (179, 60),
    "quotactl_fd": (443, 443), "syslog": (103, 116), "iopl": (172, None), "ioperm": (173, None),
    "settimeofday": (164, 170), "clock_settime": (227, 112), "adjtimex": (159, 171),
    "clock_adjtime": (305, 266), "sethostname": (170, 161), "setdomainname": (171, 162),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
    "chmod": (90, None), "fchmod": (91, 52), "fchmodat": (268, 53), "fchmodat2": (452, 452),
    "chown": (92, None), "fchown": (93, 55), "lchown": (94, None), "fchownat": (260, 54),
    "utime": (132, None), "utimes": (235, None), "utimensat": (280, 88), "futimesat": (261, None),
    "setxattr": (188, 5), "lsetxattr": (189, 6), "fsetxattr": (190, 7), "setxattrat": (463, 463),
    "removexattr": (197, 14), "lremovexattr": (198, 15), "fremovexattr": (199, 16),
    "removexattrat": (466, 466), "mknod": (133, None), "mknodat": (259, 33),
    "personality": (135, 92),
    # System V IPC and POSIX message queues: objects that outlive the program (and, on the process
    # backend, live on the host), so a channel from one program to the next.
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "shmdt": (67, 197),
    "semget": (64, 190), "semop": (65, 193), "semctl": (66, 191), "semtimedop": (220, 192),
    "msgget": (68, 186), "msgsnd": (69, 189), "msgrcv": (70, 188), "msgctl": (71, 187),
    "mq_open": (240, 180), "mq_unlink": (241, 181), "mq_timedsend": (242, 182),
    "mq_timedreceive": (243, 183), "mq_notify": (244, 184), "mq_getsetattr": (245, 185),
    # Watching other folders, locks on shared files (/dev/null, the read-only system): seen by
    # programs running at the same time and by the host.
    "inotify_init": (253, None), "inotify_init1": (294, 26), "inotify_add_watch": (254, 27),
    "fanotify_init": (300, 262), "fanotify_mark": (301, 263), "flock": (73, 32),
    # Reading outside: symbolic links (/proc/<pid>/cwd, exe, fd/N on the process backend) and
    # extended attributes, which Landlock does not cover.
    "readlink": (89, None), "readlinkat": (267, 78),
    "getxattr": (191, 8), "lgetxattr": (192, 9), "fgetxattr": (193, 10), "getxattrat": (464, 464),
    "listxattr": (194, 11), "llistxattr": (195, 12), "flistxattr": (196, 13), "listxattrat": (465, 465),
    # Allowed except for the commands below (_FCNTL_DENIED, _IOCTL_DENIED).
    "fcntl": (72, 25), "ioctl": (16, 29),
}
# xattr reads fail as on a file system without extended attributes (shutil.copy2 then still works).
_ERRNO = {name: errno.ENOTSUP for name in ("getxattr", "lgetxattr", "fgetxattr", "getxattrat",
                                          "listxattr", "llistxattr", "flistxattr", "listxattrat")}
# fcntl commands: F_SETOWN, F_SETSIG, F_SETOWN_EX (with O_ASYNC, a signal to any process: the
# kill() rules bypassed), F_NOTIFY (directory watch), F_SETLEASE, and the record locks (F_GETLK,
# F_SETLK, F_SETLKW and their OFD forms) that other programs and the host would see.
_FCNTL_DENIED = (8, 10, 15, 1026, 1024, 5, 6, 7, 36, 37, 38)
_IOCTL_DENIED = (0x8901, 0x8902)  # FIOSETOWN, SIOCSPGRP: F_SETOWN by ioctl
# Calls allowed only with particular arguments; checked before the plain denials below.
_CHECKED = ("clone", "clone3", "kill", "tgkill", "prlimit64", "fcntl", "ioctl")
_DENIED = tuple(name for name in _SYSCALLS if name not in _CHECKED)

_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

_LD_W_ABS, _JA, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x05, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_KILL_PROCESS, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_OFF_NR, _OFF_ARCH, _OFF_ARG0_LO, _OFF_ARG1_LO = 0, 4, 16, 24


def seccomp_arch() -> str | None:
    """The machine name when the filter knows its syscall table, else None."""
    machine = os.uname().machine
    return machine if machine in _AUDIT_ARCH else None


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def patch_pid(program, slots: tuple[list[int], list[int]], pid: int) -> None:
    """Write pid and -pid into the filter's comparisons (after fork: the pid is the child's)."""
    for offset in slots[0]:
        struct.pack_into("=I", program, offset, pid & 0xFFFFFFFF)
    for offset in slots[1]:
        struct.pack_into("=I", program, offset, -pid & 0xFFFFFFFF)


_PID, _NEG_PID = 0x7FFFFFF1, 0x7FFFFFF2  # placeholders: no real pid is this large (pid_max <= 2**22)


def filter_template(arch: str) -> tuple[bytes, tuple[list[int], list[int]]]:
    """The filter with placeholders, and the byte offsets of the pid and -pid constants."""
    program = _assemble(arch)
    slots: tuple[list[int], list[int]] = ([], [])
    for index in range(0, len(program), 8):
        k = struct.unpack_from("=I", program, index + 4)[0]
        if k in (_PID, _NEG_PID):
            slots[k == _NEG_PID].append(index + 4)
    return program, slots


def _deny_commands(commands: tuple, deny: bytes, allow: bytes) -> list[bytes]:
    """A block denying a call whose second argument (fcntl's and ioctl's command) is in `commands`."""
    n = len(commands)
    return ([_insn(_LD_W_ABS, _OFF_ARG1_LO)] + [_insn(_JEQ_K, c, n - i, 0) for i, c in enumerate(commands)]
            + [allow, deny])


def _assemble(arch: str) -> bytes:
    col = 0 if arch == "x86_64" else 1
    nr = {name: pair[col] for name, pair in _SYSCALLS.items() if pair[col] is not None}
    deny, allow = _insn(_RET_K, _RET_ERRNO | errno.EPERM), _insn(_RET_K, _RET_ALLOW)
    own = [_insn(_LD_W_ABS, _OFF_ARG0_LO), _insn(_JEQ_K, 0, 2, 0), _insn(_JEQ_K, _PID, 1, 0), deny, allow]
    # What to do for each listed call; every block ends in a return on all its branches.
    blocks = {name: [_insn(_RET_K, _RET_ERRNO | _ERRNO.get(name, errno.EPERM))] for name in _DENIED}
    # clone: threads only (fork is clone without CLONE_THREAD).
    blocks["clone"] = [_insn(_LD_W_ABS, _OFF_ARG0_LO), _insn(_JSET_K, _CLONE_THREAD, 0, 1), allow, deny]
    # clone3 passes its flags in memory BPF cannot read: ENOSYS makes glibc fall back to clone.
    blocks["clone3"] = [_insn(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    # kill(pid, sig): only 0 (own group), pid, -pid (the group it leads).
    blocks["kill"] = [_insn(_LD_W_ABS, _OFF_ARG0_LO), _insn(_JEQ_K, 0, 3, 0), _insn(_JEQ_K, _PID, 2, 0),
                      _insn(_JEQ_K, _NEG_PID, 1, 0), deny, allow]
    # tgkill(tgid, ...) and prlimit64(pid, ...): own process only (raise(), setrlimit use these).
    blocks["tgkill"] = blocks["prlimit64"] = own
    blocks["fcntl"], blocks["ioctl"] = _deny_commands(_FCNTL_DENIED, deny, allow), _deny_commands(_IOCTL_DENIED, deny, allow)
    entries = sorted((nr[name], block) for name, block in blocks.items() if name in nr)

    def tree(items: list) -> list[bytes]:
        """Binary search on the syscall number (in the accumulator): a few comparisons per call,
        which keeps the kernel's per-syscall verdict cache cheap to build at install time."""
        if len(items) == 1:
            number, block = items[0]
            return [_insn(_JEQ_K, number, 0, len(block))] + block + [allow]
        mid = len(items) // 2
        left, right = tree(items[:mid]), tree(items[mid:])
        if len(left) > 255:  # past a conditional jump's 8-bit offset: over `left` with an unconditional one
            return [_insn(_JGE_K, items[mid][0], 0, 1), _insn(_JA, len(left))] + left + right
        return [_insn(_JGE_K, items[mid][0], len(left), 0)] + left + right

    p = [_insn(_LD_W_ABS, _OFF_ARCH), _insn(_JEQ_K, _AUDIT_ARCH[arch], 1, 0), _insn(_RET_K, _RET_KILL_PROCESS),
         _insn(_LD_W_ABS, _OFF_NR)]
    if arch == "x86_64":
        p += [_insn(_JGE_K, _X32_SYSCALL_BIT, 0, 1), deny]
    return b"".join(p + tree(entries))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_supported() -> bool:
    """Kernel built with seccomp filters and an architecture the table covers."""
    if seccomp_arch() is None:
        return False
    try:
        with open("/proc/self/status") as f:
            return any(line.startswith("Seccomp:") for line in f)
    except OSError:
        return False


class SeccompFilter:
    """Assembled before fork; the child patches in its pid and installs it (a few microseconds)."""

    def __init__(self):
        arch = seccomp_arch()
        if arch is None:
            raise OSError(errno.ENOSYS, "seccomp: unsupported architecture")
        template, self._slots = filter_template(arch)
        self._buf = ctypes.create_string_buffer(template, len(template))
        self._fprog = _SockFprog(len(template) // 8, ctypes.addressof(self._buf))

    def install(self, pid: int) -> None:
        patch_pid(self._buf, self._slots, pid)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog), 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp: {os.strerror(err)}")


# ------------------------------------------------------------------------------------ all of it


class Restrictions:
    """Everything prepared once (per worker, or per fresh process); `apply` in the program's process.

    lock: {"landlock_abi", "seccomp", "read_paths", "device_paths"} as runner.lock_config makes it.
    """

    def __init__(self, lock: dict, workdir: str, memory_mb: int, cpu_seconds: int, file_bytes: int,
                 drop_caps: bool = True):
        self.memory_bytes, self.cpu_seconds, self.file_bytes = int(memory_mb) << 20, cpu_seconds, file_bytes
        self.drop_caps = drop_caps  # False where the parent has none left to pass on
        self.ruleset = -1
        if lock["landlock_abi"]:
            self.ruleset = landlock_ruleset(lock["landlock_abi"], lock["read_paths"], lock["device_paths"], workdir)
        self.seccomp = SeccompFilter() if lock["seccomp"] else None

    def apply(self, vm_bytes: int | None = None) -> None:
        """vm_bytes: the address space the process has now (read by the parent just before fork)."""
        prctl(PR_SET_DUMPABLE, 0)  # no ptrace or /proc/<pid>/mem by same-uid peers
        if self.drop_caps:
            drop_capabilities()
        # The memory limit is counted on top of the address space the interpreter already has.
        vm = vm_size_bytes() if vm_bytes is None else vm_bytes
        set_rlimits(vm + self.memory_bytes, self.cpu_seconds, self.file_bytes)
        if self.ruleset >= 0:
            landlock_restrict(self.ruleset)
            os.close(self.ruleset)
        if self.seccomp is not None:
            self.seccomp.install(os.getpid())

    def close(self) -> None:
        if self.ruleset >= 0:
            os.close(self.ruleset)
            self.ruleset = -1
