"""Host uids for environments: a range, the lowest free id first, each held host-wide by a lock that
dies with its holder. Real locks on a lock file in a temporary directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lamina.runtime.host_ids import DEFAULT_RANGE, HostIdRange, HostIds, HostIdsExhausted, conflicts

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_parse_and_describe() -> None:
    ids = HostIdRange.parse("200000-200009")
    assert (ids.first, ids.last, len(ids), str(ids)) == (200000, 200009, 10, "200000-200009")
    assert 200000 in ids and 200009 in ids and 200010 not in ids and 199999 not in ids
    assert len(DEFAULT_RANGE) == 65536 and DEFAULT_RANGE.first == 0x70000000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("200000", "expected FIRST-LAST"),
        ("a-b", "expected FIRST-LAST"),
        ("-5-10", "expected FIRST-LAST"),
        ("0-100000", "1000 <= FIRST"),
        ("999-2000", "1000 <= FIRST"),
        ("3000-2000", "FIRST <= LAST"),
        ("4294967294-4294967294", "LAST <= 2147483646"),
    ],
)
def test_bad_ranges_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HostIdRange.parse(text)


def test_lowest_free_id_first_and_given_back(tmp_path: Path) -> None:
    ids = HostIds(HostIdRange(300000, 300002), tmp_path)
    try:
        assert [ids.allocate() for _ in range(3)] == [300000, 300001, 300002]
        with pytest.raises(HostIdsExhausted, match="all 3 host uids of --uid-range 300000-300002 are in use"):
            ids.allocate()
        ids.release(300001)
        ids.release(300001)  # idempotent
        assert ids.in_use == {300000, 300002}
        assert ids.allocate() == 300001
    finally:
        ids.close()
    assert (tmp_path / "host-ids.lock").stat().st_mode & 0o777 == 0o600


def test_two_allocators_of_one_process_never_share(tmp_path: Path) -> None:
    """Two servers in one process (as in tests): their locks conflict too."""
    first = HostIds(HostIdRange(300000, 300003), tmp_path)
    second = HostIds(HostIdRange(300000, 300003), tmp_path)
    try:
        taken = [first.allocate(), second.allocate(), first.allocate(), second.allocate()]
        assert sorted(taken) == [300000, 300001, 300002, 300003]
        first.close()  # closing one descriptor of the file drops none of the other's locks
        assert second.in_use == {taken[1], taken[3]}
        third = HostIds(HostIdRange(300000, 300003), tmp_path)
        try:
            assert [third.allocate(), third.allocate()] == [taken[0], taken[2]]
        finally:
            third.close()
    finally:
        second.close()


def _holder(tmp_path: Path, count: int) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        from pathlib import Path
        from lamina.runtime.host_ids import HostIdRange, HostIds
        ids = HostIds(HostIdRange(300000, 300009), Path({str(tmp_path)!r}))
        print(*[ids.allocate() for _ in range({count})], flush=True)
        time.sleep(60)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_another_servers_ids_are_skipped_until_it_dies(tmp_path: Path) -> None:
    """Another process's ids are not handed out; killed (-9), its locks go with it."""
    holder = _holder(tmp_path, 2)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().split() == ["300000", "300001"]
        ids = HostIds(HostIdRange(300000, 300009), tmp_path)
        try:
            assert ids.allocate() == 300002
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
            assert [ids.allocate(), ids.allocate()] == [300000, 300001]
        finally:
            ids.close()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_unusable_lock_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    ids = HostIds(HostIdRange(300000, 300001), blocker / "sub")
    with pytest.raises(Exception, match="cannot open the host id lock file"):
        ids.allocate()


def test_conflicts_name_the_hosts_users_and_groups() -> None:
    import pwd

    user = next((u for u in pwd.getpwall() if 1000 <= u.pw_uid < 2**31 - 1), None)
    if user is None:
        pytest.skip("no user with an id of 1000 or more on this host")
    found = conflicts(HostIdRange(user.pw_uid, user.pw_uid))
    assert f"user {user.pw_name} ({user.pw_uid})" in found
    assert conflicts(DEFAULT_RANGE) == []


def test_conflicts_name_subordinate_id_ranges(tmp_path: Path) -> None:
    """A user's subordinate ids (/etc/subuid, /etc/subgid: what newuidmap lets them map into a user
    namespace of their own) are that user's to act as: a range overlapping them would let the user
    signal (stop, kill) functions from the host. Touching ranges, comments and junk lines aside."""
    subuid = tmp_path / "subuid"
    subgid = tmp_path / "subgid"
    subuid.write_text("# comment\nalice:100000:65536\n1001:300000:10\nbroken line\nbob:x:5\n")
    subgid.write_text("carol:500000:100\n")
    files = (subuid, subgid)
    assert conflicts(HostIdRange(165530, 170000), subid_files=files) == [
        f"subordinate ids of alice (100000-165535, {subuid})"
    ]
    assert conflicts(HostIdRange(300009, 300009), subid_files=files) == [
        f"subordinate ids of 1001 (300000-300009, {subuid})"
    ]
    assert conflicts(HostIdRange(400000, 500000), subid_files=files) == [
        f"subordinate ids of carol (500000-500099, {subgid})"
    ]
    assert conflicts(HostIdRange(165536, 299999), subid_files=files) == []
    assert conflicts(HostIdRange(165536, 299999), subid_files=(tmp_path / "missing",)) == []
