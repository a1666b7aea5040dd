"""The seccomp profile as data, and the BPF libseccomp compiles from it (no filter is loaded here)."""

from __future__ import annotations

import errno
import platform

import pytest

from lamina.linux import seccomp
from lamina.linux.seccomp import Cmp
from lamina.runtime import seccomp_profile as profile

pytestmark = pytest.mark.skipif(platform.machine() not in seccomp.ARCHES, reason="no profile for this arch")


def _denied_names() -> set[str]:
    return {name for names, _ in profile.DENIED for name in names}


def test_allow_list_has_no_duplicates() -> None:
    assert len(profile.ALLOWED) == len(set(profile.ALLOWED))


def test_nothing_denied_is_allowed() -> None:
    conditional_allows = {n for r in profile.CONDITIONAL if r.action == seccomp.ACT_ALLOW for n in r.names}
    assert not _denied_names() & set(profile.ALLOWED)
    assert not _denied_names() & conditional_allows
    assert "clone3" not in conditional_allows


@pytest.mark.parametrize(
    "name",
    [
        "unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen",
        "fsconfig", "fsmount", "fspick", "mount_setattr", "add_key", "request_key", "keyctl", "bpf",
        "perf_event_open", "userfaultfd", "init_module", "finit_module", "delete_module",
        "kexec_load", "kexec_file_load", "io_uring_setup",
    ],
)  # fmt: skip
def test_issue_denials_are_listed_with_a_reason(name: str) -> None:
    assert name in _denied_names()
    assert all(reason for _, reason in profile.DENIED)


def test_every_denied_name_is_a_real_syscall_somewhere() -> None:
    # A misspelt denial would document nothing; umount is i386-only and still known to libseccomp.
    for name in _denied_names():
        assert any(seccomp.resolve(name, arch) is not None for arch in seccomp.ARCHES) or name == "umount"


def test_core_calls_resolve_on_the_native_arch() -> None:
    arch = seccomp.native_arch()
    for name in ("read", "write", "openat", "mmap", "futex", "execve", "exit_group", "clone", "socket"):
        assert seccomp.resolve(name, arch) is not None, name
    assert seccomp.resolve("no_such_syscall", arch) is None


def test_conditions() -> None:
    by_name = {r.names[0]: r for r in profile.CONDITIONAL}
    clone = by_name["clone"]
    assert clone.action == seccomp.ACT_ALLOW
    assert clone.args == (seccomp.Arg(0, Cmp.MASKED_EQ, 0, mask=profile.CLONE_NEW_FLAGS),)
    # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
    for flag in (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        assert profile.CLONE_NEW_FLAGS & flag
    # Threads (CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID) pass.
    assert not profile.CLONE_NEW_FLAGS & 0x3D0F00
    assert by_name["clone3"].action == seccomp.act_errno(errno.ENOSYS)
    assert profile.DEFAULT_ACTION == seccomp.act_errno(errno.EPERM) == profile.BAD_ARCH_ACTION


def test_exported_bpf_is_nonempty_and_deterministic() -> None:
    first = seccomp.compile_bpf(
        profile.DEFAULT_ACTION, profile.rules(), bad_arch_action=profile.BAD_ARCH_ACTION
    )
    second = seccomp.compile_bpf(
        profile.DEFAULT_ACTION, profile.rules(), bad_arch_action=profile.BAD_ARCH_ACTION
    )
    assert first == second
    assert len(first) % 8 == 0 and len(first) // 8 > 100
    cached = profile.syscall_filter()
    assert cached is profile.syscall_filter()
    assert cached.program == first
    assert cached.instructions == len(first) // 8


def test_the_program_checks_the_architecture_first() -> None:
    program = profile.syscall_filter().program
    # BPF_LD|BPF_W|BPF_ABS of seccomp_data.arch (offset 4), then a JEQ against the native token.
    code, _, _, k = int.from_bytes(program[0:2], "little"), program[2], program[3], program[4:8]
    assert code == 0x20 and int.from_bytes(k, "little") == 4
    assert int.from_bytes(program[12:16], "little") == seccomp.ARCHES[seccomp.native_arch()]


def test_a_rule_libseccomp_refuses_is_an_error() -> None:
    # A rule with the default action is refused by libseccomp (seccomp_rule_add(3)).
    with pytest.raises(seccomp.SeccompError):
        seccomp.compile_bpf(
            profile.DEFAULT_ACTION,
            [seccomp.Rule(("read",), profile.DEFAULT_ACTION)],
            bad_arch_action=profile.BAD_ARCH_ACTION,
        )


def test_filter_rejects_a_truncated_program() -> None:
    with pytest.raises(ValueError):
        seccomp.Filter(b"\x00" * 7)
    with pytest.raises(ValueError):
        seccomp.Filter(b"")
