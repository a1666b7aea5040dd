"""IAM roles, policies and STS sessions on a real SQLite file."""

from __future__ import annotations

from lamina.store import Database, IamStore, Session

ACCOUNT = "000000000000"


def role(name: str) -> dict[str, str]:
    return {"RoleName": name, "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}


def test_roles_are_case_insensitive_per_account(db: Database) -> None:
    iam = IamStore(db)
    assert iam.put_role(ACCOUNT, role("Runner"), create=True)
    assert not iam.put_role(ACCOUNT, role("RUNNER"), create=True)
    assert iam.get_role(ACCOUNT, "runner") == role("Runner")
    assert iam.get_role("111111111111", "runner") is None
    assert iam.put_role(ACCOUNT, {**role("Runner"), "Description": "x"}, create=False)
    iam.put_role(ACCOUNT, role("Alpha"), create=True)
    assert [r["RoleName"] for r in iam.list_roles(ACCOUNT)] == ["Alpha", "Runner"]


def test_a_role_in_use_is_not_deleted(db: Database) -> None:
    iam = IamStore(db)
    iam.put_role(ACCOUNT, role("Runner"), create=True)
    iam.put_inline(ACCOUNT, "Runner", "p", "{}")
    assert iam.delete_role(ACCOUNT, "runner") == "policies"
    assert iam.delete_inline(ACCOUNT, "RUNNER", "p")
    assert not iam.delete_inline(ACCOUNT, "RUNNER", "p")
    iam.attach(ACCOUNT, "Runner", "arn:p")
    iam.attach(ACCOUNT, "Runner", "arn:p")  # twice: once
    assert iam.delete_role(ACCOUNT, "Runner") == "attached"
    assert iam.detach(ACCOUNT, "runner", "arn:p")
    assert not iam.detach(ACCOUNT, "runner", "arn:p")
    assert iam.delete_role(ACCOUNT, "Runner") is None
    assert iam.get_role(ACCOUNT, "Runner") is None


def test_inline_and_managed_policies(db: Database) -> None:
    iam = IamStore(db)
    iam.put_inline(ACCOUNT, "Runner", "b", '{"v": 1}')
    iam.put_inline(ACCOUNT, "Runner", "a", '{"v": 2}')
    iam.put_inline(ACCOUNT, "runner", "b", '{"v": 3}')  # replaced
    assert iam.get_inline(ACCOUNT, "RUNNER", "b") == '{"v": 3}'
    assert iam.get_inline(ACCOUNT, "Runner", "c") is None
    assert iam.inline_policies(ACCOUNT, "Runner") == [("a", '{"v": 2}'), ("b", '{"v": 3}')]
    policy = {"Arn": "arn:aws:iam::000000000000:policy/p", "PolicyName": "p"}
    assert iam.put_policy(ACCOUNT, policy, '{"d": 1}', create=True)
    assert not iam.put_policy(ACCOUNT, policy, '{"d": 2}', create=True)
    assert iam.put_policy(ACCOUNT, policy, '{"d": 2}', create=False)
    assert iam.get_policy(ACCOUNT, policy["Arn"]) == (policy, '{"d": 2}')
    iam.attach(ACCOUNT, "Runner", policy["Arn"])
    iam.attach(ACCOUNT, "Other", policy["Arn"])
    iam.attach(ACCOUNT, "Runner", "arn:aws:iam::aws:policy/A")
    assert iam.attached(ACCOUNT, "runner") == [policy["Arn"], "arn:aws:iam::aws:policy/A"]
    assert iam.attachment_count(ACCOUNT, policy["Arn"]) == 2
    assert iam.delete_policy(ACCOUNT, policy["Arn"])
    assert not iam.delete_policy(ACCOUNT, policy["Arn"])
    assert iam.get_policy(ACCOUNT, policy["Arn"]) is None


def test_customer_policies_are_listed_per_account(db: Database) -> None:
    iam = IamStore(db)
    assert iam.list_policies(ACCOUNT) == []
    first = {"Arn": "arn:aws:iam::000000000000:policy/p", "PolicyName": "p"}
    second = {"Arn": "arn:aws:iam::000000000000:policy/q", "PolicyName": "q"}
    iam.put_policy(ACCOUNT, first, "{}", create=True)
    iam.put_policy(ACCOUNT, second, "{}", create=True)
    iam.put_policy("111111111111", {"Arn": "arn:aws:iam::111111111111:policy/p"}, "{}", create=True)
    assert sorted(p["PolicyName"] for p in iam.list_policies(ACCOUNT)) == ["p", "q"]
    iam.delete_policy(ACCOUNT, first["Arn"])
    assert iam.list_policies(ACCOUNT) == [second]


def test_sessions_and_their_expiry(db: Database) -> None:
    iam = IamStore(db)

    def session(key: str, expires: float) -> Session:
        return Session(key, "secret", "token", ACCOUNT, "arn:s", "AROA:s", "arn:r", expires)

    iam.add_session(session("ASIAOLD", 1000.0), now=1000.0)
    assert iam.session("ASIAOLD") == session("ASIAOLD", 1000.0)
    # Sessions expired for over an hour are dropped when another is added.
    iam.add_session(session("ASIANEW", 9000.0), now=1000.0 + 3601)
    assert iam.session("ASIAOLD") is None
    assert iam.session("ASIANEW") == session("ASIANEW", 9000.0)
    assert iam.session("ASIANONE") is None


def test_sessions_keep_session_policies_and_tags(db: Database) -> None:
    iam = IamStore(db)
    full = Session(
        "ASIAFULL",
        "secret",
        "token",
        ACCOUNT,
        "arn:aws:sts::000000000000:assumed-role/r/s",
        "AROA:s",
        "arn:aws:iam::000000000000:role/r",
        9000.0,
        policy='{"Statement": []}',
        policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        tags={"Team": "blue", "Stage": "2"},
        transitive_tag_keys=("Team",),
        source_identity="alice",
    )
    iam.add_session(full, now=1000.0)
    assert iam.session("ASIAFULL") == full
    stored = iam.session("ASIAFULL")
    assert stored is not None and list(stored.tags) == ["Team", "Stage"]  # order kept
    # A GetSessionToken session acts as the caller: no role behind it.
    own = Session("ASIAOWN", "s", "t", ACCOUNT, "arn:aws:iam::000000000000:user/dev", "AIDA1", "", 9000.0)
    iam.add_session(own, now=1000.0)
    assert iam.session("ASIAOWN") == own
    assert full.is_role_session and not own.is_role_session


def test_authorization_messages(db: Database) -> None:
    iam = IamStore(db)
    encoded = iam.save_authorization_message(ACCOUNT, '{"allowed":false}', now=1000.0)
    again = iam.save_authorization_message(ACCOUNT, '{"allowed":false}', now=1000.0)
    assert encoded != again and len(encoded) > 500
    assert iam.authorization_message(ACCOUNT, encoded) == '{"allowed":false}'
    assert iam.authorization_message("111111111111", encoded) is None  # another account's
    assert iam.authorization_message(ACCOUNT, "unknown") is None
    # Messages older than a week are dropped when another is saved.
    iam.save_authorization_message(ACCOUNT, "{}", now=1000.0 + 7 * 24 * 3600 + 1)
    assert iam.authorization_message(ACCOUNT, encoded) is None
