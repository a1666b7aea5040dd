"""The syscall profile of every execution environment, as data: what is allowed, what is refused.

Sources:
- Docker's default seccomp profile (moby ``profiles/seccomp/default.json``; the same list
  containerd generates): default action ``ERRNO(EPERM)``; an allow list of ordinary calls;
  ``personality`` only for the personas glibc and ``setarch``/``linux32`` use; ``clone`` only
  without any ``CLONE_NEW*`` flag; ``clone3`` answers ``ENOSYS`` (its flags sit in a struct
  the filter cannot read, and glibc then falls back to ``clone``); ``socket`` for every
  family but ``AF_VSOCK``; the calls Docker grants only with a capability (``mount``,
  ``unshare``, ``setns``, ``bpf``, ``perf_event_open``, the module calls...) are left out,
  since the sandbox user has no capabilities.
- seccomp(2) and Documentation/userspace-api/seccomp_filter.rst for the semantics.
- Beyond Docker (the brief of issue 13, and what gVisor and Firecracker's jailer refuse):
  ``io_uring_*`` are refused as Google's and Docker's later profiles do (a large, often
  exploited kernel surface that bypasses per-syscall filtering); :data:`DENIED` names the
  namespace, mount, keyring, BPF, perf, userfaultfd, module and kexec calls explicitly,
  with the reason, so a change to :data:`ALLOWED` that lets one through fails the unit tests.

Everything not allowed fails with ``EPERM`` ("Operation not permitted"), as for a process
without the privilege, so programs take their ordinary fallback paths. The filter covers the
native architecture only: calls through another convention (i386 ``int 0x80``, x32) are
refused with ``EPERM`` too, which keeps a 32-bit entry point from bypassing the argument
checks (Docker allows those sub-architectures; nothing Lambda runs uses them).
"""

from __future__ import annotations

import errno
import functools

from lamina.linux import seccomp
from lamina.linux.seccomp import Arg, Cmp, Rule

DEFAULT_ACTION = seccomp.act_errno(errno.EPERM)
BAD_ARCH_ACTION = seccomp.act_errno(errno.EPERM)

# Docker's unconditional allow list (less io_uring_*). Names of other architectures
# (``chown32``, ``mmap2``...) are kept as Docker lists them: they resolve to nothing here.
ALLOWED: tuple[str, ...] = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
    "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
    "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
    # Docker: kernels >= 4.8 check ptrace against the seccomp filter of the tracee, so a
    # traced process cannot escape it. The PID namespace shows only the environment's own
    # processes, so these reach nothing of another environment.
    "ptrace", "process_vm_readv", "process_vm_writev",
    # Docker, per architecture: x86_64 thread-local storage and LDT; aarch64 cache calls.
    "arch_prctl", "modify_ldt", "breakpoint", "cacheflush", "set_tls", "sync_file_range2",
)  # fmt: skip

# clone(2) flags that create namespaces: CLONE_NEWNS 0x20000, CLONE_NEWCGROUP 0x02000000,
# CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET (up to 0x40000000).
# (CLONE_NEWTIME, 0x80, is the exit-signal byte in clone(); only clone3 and unshare take it.)
CLONE_NEW_FLAGS = 0x7E020000
AF_VSOCK = 40
# Personas Docker allows: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and
# 0xffffffff (a query that changes nothing).
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

CONDITIONAL: tuple[Rule, ...] = (
    Rule(("clone",), seccomp.ACT_ALLOW, (Arg(0, Cmp.MASKED_EQ, 0, mask=CLONE_NEW_FLAGS),)),
    Rule(("clone3",), seccomp.act_errno(errno.ENOSYS)),
    Rule(("socket",), seccomp.ACT_ALLOW, (Arg(0, Cmp.NE, AF_VSOCK),)),
    *(Rule(("personality",), seccomp.ACT_ALLOW, (Arg(0, Cmp.EQ, p),)) for p in PERSONAS),
)

# Refused (by the default action) on purpose; listed so tests can hold ALLOWED to it.
DENIED: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("unshare", "setns"),
        "new or other namespaces: a user namespace makes the caller root of it, with "
        "CAP_NET_ADMIN over nf_tables and other surfaces local privilege escalations use",
    ),
    (
        (
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "chroot",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
        ),
        "the filesystem layout is the sandbox's; the new mount API reaches filesystem parsers",
    ),  # fmt: skip
    (
        ("add_key", "request_key", "keyctl"),
        "the kernel keyrings are not namespaced: another environment's keys would be reachable",
    ),
    (("bpf",), "eBPF programs and maps: verifier bugs are a frequent escalation path"),
    (("perf_event_open",), "performance counters leak other processes' activity and have had exploits"),
    (("userfaultfd",), "lets code stall the kernel mid-copy, the usual tool for winning kernel races"),
    (
        ("init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load"),
        "loading kernel code",
    ),
    (
        ("io_uring_setup", "io_uring_enter", "io_uring_register"),
        "asynchronous syscalls that run outside seccomp's view, a large exploited surface",
    ),
    (
        (
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "syslog",
            "quotactl",
            "quotactl_fd",
            "sethostname",
            "setdomainname",
            "settimeofday",
            "clock_settime",
            "iopl",
            "ioperm",
            "open_by_handle_at",
            "lookup_dcookie",
            "fanotify_init",
            "vhangup",
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "move_pages",
            "migrate_pages",
        ),
        "host-wide administration that Docker grants only with a capability",
    ),  # fmt: skip
    (
        ("clone3",),
        "answers ENOSYS instead: its namespace flags are out of the filter's reach, and glibc "
        "falls back to clone, whose flags the filter checks",
    ),
)


def rules() -> tuple[Rule, ...]:
    """The allow rules and conditional rules of the profile, in order."""
    return (Rule(ALLOWED, seccomp.ACT_ALLOW), *CONDITIONAL)


@functools.cache
def syscall_filter() -> seccomp.Filter:
    """The profile compiled for this machine's architecture, once per process (cached)."""
    program = seccomp.compile_bpf(DEFAULT_ACTION, rules(), bad_arch_action=BAD_ARCH_ACTION)
    return seccomp.Filter(program)
