"""The authorize stage of the request pipeline, filled with IAM's evaluation.

For every request: the action, resource and condition keys of the operation (the table in
:mod:`lamina.domain.actions`), the caller's policies (identity policies of the user or role with its
groups', its permissions boundary, a session's policies) and the resource's own policy (function
and layer version policies, a role's trust policy for ``sts:AssumeRole``), decided as IAM does
(:mod:`lamina.domain.evaluation`). A denial is AWS's ``AccessDenied`` in the service's own words.

Costs: an account's root user in its own account is allowed without any look-up (as AWS's root
user is); the policies of a user or role are parsed once and kept until IAM changes
(:attr:`IamStore.generation`); a session's own policies are kept for its lifetime, with the
decisions its requests made, by the values of the condition keys they tested (none a policy
variable or a resource policy took part in). Within one
account a resource policy is read only when the identity side alone does not allow the request:
the resource policies lamina keeps (AddPermission, AddLayerVersionPermission) only ever Allow,
so they cannot turn an allowed request into a denied one. A role's trust policy is read for every
``sts:AssumeRole``, whose handler also requires it to name the caller, as AWS does.

S3: bucket ARNs carry no account, so the owner of the bucket a request acts on, and its bucket
policy, are read by name (``buckets``) for every S3 check. A bucket policy may Deny: once one is
set it is evaluated for every request on the bucket, the owner's root user's included (except
managing the policy itself, which the owner's root may always do). Across accounts the caller's
identity side and the bucket policy must both allow. Unsigned requests (only S3 admits them) are
the anonymous caller, allowed only what a bucket policy grants ``*``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from lamina.domain import actions
from lamina.domain.actions_spec import IamEntity
from lamina.domain.arns import Arn
from lamina.domain.endpoints import EndpointOrigin
from lamina.domain.evaluation import (
    Caller,
    Decision,
    PolicySet,
    PolicyType,
    PrincipalKind,
    decide,
    denial_message,
    endpoint_decision,
)
from lamina.domain.iam_managed import MANAGED
from lamina.domain.policy import (
    Effect,
    MalformedPolicy,
    PolicyDocument,
    PolicyKind,
    Statement,
    normalise_context,
    parse_policy,
)
from lamina.domain.s3_policy import POLICY_MANAGEMENT, bucket_of
from lamina.errors import CROSS_ACCOUNT_PASS_ROLE, AccessDeniedException, UnrecognizedClientException
from lamina.services.base import AuthorizationRequest
from lamina.services.iam.identities import Identity, IdentityKind, load_identity
from lamina.store.iam import IamStore

log = logging.getLogger("lamina.iam")

SESSIONS_KEPT = 4096
DECISIONS_KEPT = 256  # per principal
EC2_UNAUTHORIZED = "You are not authorized to perform this operation."
ASSUME_ROLE = "sts:assumerole"
PASS_ROLE = "iam:PassRole"
# IAM's words for a GetSessionToken session without MFA (no final period, unlike a bad key's).
NO_MFA_SESSION = "The security token included in the request is invalid"

# A resource's own policy document (JSON), by the resource's ARN; None when it has none.
ResourcePolicy = Callable[[Arn], "str | None"]
# A resource's tags (aws:ResourceTag/*), by the resource's ARN; empty when it has none.
ResourceTags = Callable[[Arn], Mapping[str, str]]
# An S3 bucket's owner account and policy document (None: no policy), by the bucket's name; None
# when there is no such bucket.
BucketAccess = Callable[[str], "tuple[str, str | None] | None"]
# Who S3 says was refused when the request is anonymous or crosses accounts: S3 details a denial
# only to a caller of the bucket owner's account.
S3_ACCESS_DENIED = "Access Denied"
ANONYMOUS_ARN = "anonymous"
CREATE_BUCKET = "s3:CreateBucket"


def _mentions_resource_tags(document: PolicyDocument) -> bool:
    """Whether a policy has a condition on aws:ResourceTag/* (condition keys are case-insensitive)."""
    return any(
        c.key.lower().startswith("aws:resourcetag/")
        for statement in document.statements
        for c in statement.conditions
    )


ContextValues = Mapping[str, "str | tuple[str, ...]"]


@lru_cache(maxsize=2048)
def _parsed(text: str, kind: PolicyKind) -> PolicyDocument | None:
    """A stored document, parsed once; None if it does not parse (it then grants nothing)."""
    try:
        return parse_policy(text, kind)
    except MalformedPolicy:
        log.warning("a stored %s policy does not parse; it grants nothing", kind.value)
        return None


def _documents(texts: tuple[str, ...]) -> tuple[PolicyDocument, ...]:
    return tuple(d for d in (_parsed(t, PolicyKind.IDENTITY) for t in texts) if d is not None)


class IamLookups:
    """What the action table may ask the stores (an :class:`actions.Lookups`)."""

    def __init__(self, iam: IamStore, subnet_vpc: Callable[[str, str, str], str | None]) -> None:
        self._iam = iam
        self._subnet_vpc = subnet_vpc

    def subnet_vpc(self, account: str, region: str, subnet_id: str) -> str | None:
        return self._subnet_vpc(account, region, subnet_id)

    def iam_entity(self, account: str, kind: str, name: str) -> IamEntity | None:
        found: Mapping[str, object] | None = None
        if kind == "role":
            found = self._iam.get_role(account, name)
        elif kind == "user":
            found = self._iam.get_user(account, name)
        elif kind == "group":
            found = self._iam.get_group(account, name)
        if found is None:
            return None
        path, stored = found.get("Path"), found.get(f"{kind.capitalize()}Name")
        if not isinstance(path, str) or not isinstance(stored, str):
            return None
        attached = found.get("PermissionsBoundary")
        boundary = attached.get("PermissionsBoundaryArn") if isinstance(attached, Mapping) else None
        return IamEntity(path, stored, boundary if isinstance(boundary, str) else None)


def trust_policies(iam: IamStore) -> ResourcePolicy:
    """A role's trust policy, the resource policy ``sts:AssumeRole`` is decided with."""

    def read(arn: Arn) -> str | None:
        name = arn.role_name
        role = iam.get_role(arn.account, name) if name is not None else None
        document = role.get("AssumeRolePolicyDocument") if role is not None else None
        return document if isinstance(document, str) else None

    return read


@dataclass(frozen=True)
class _Principal:
    """A caller with everything its requests are evaluated against (cached)."""

    caller: Caller
    identity: tuple[PolicyDocument, ...] = ()
    boundary: PolicyDocument | None = None
    session: tuple[PolicyDocument, ...] | None = None
    context: ContextValues = field(default_factory=dict)
    user_name: str | None = None
    unique_id: str = ""
    # The identity side as one policy set (it remembers which statements cover each action) and
    # the caller's own condition keys, normalised once.
    policies: PolicySet = field(init=False, compare=False)
    keys: dict[str, tuple[str, ...]] = field(init=False, compare=False)
    # Whether any of its policies has an aws:ResourceTag condition: only then are a resource's tags
    # read for its requests (a store read per request otherwise).
    reads_resource_tags: bool = field(init=False, compare=False)
    # Decisions already made, by action, resource and the values of the condition keys the
    # action's statements test (see :meth:`remember`).
    decisions: dict[tuple[str, str, tuple[tuple[str, ...] | None, ...]], Decision] = field(
        init=False, compare=False
    )
    _tested: dict[str, tuple[str, ...] | None] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decisions", {})
        object.__setattr__(self, "_tested", {})
        object.__setattr__(self, "policies", PolicySet(self.identity, self.boundary, self.session))
        documents = (*self.identity, self.boundary, *(self.session or ()))
        object.__setattr__(
            self, "reads_resource_tags", any(_mentions_resource_tags(d) for d in documents if d)
        )
        caller = self.caller
        own = {
            "aws:PrincipalAccount": caller.account,
            "aws:PrincipalArn": caller.arn,
            "aws:PrincipalType": caller.kind.value,
            **self.context,
        }
        object.__setattr__(self, "keys", normalise_context(own))

    def tested(self, action: str) -> tuple[str, ...] | None:
        """The condition keys (lower-case) that the principal's statements covering ``action`` test,
        or None when one of them substitutes a policy variable (its decision then depends on more
        than those keys' values)."""
        if action in self._tested:
            return self._tested[action]
        keys: dict[str, None] = {}
        found: tuple[str, ...] | None = None
        for kind in (PolicyType.IDENTITY, PolicyType.BOUNDARY, PolicyType.SESSION):
            for _, statement, variables in self.policies.covering(kind, action):
                if variables and _substitutes(statement):
                    break
                keys.update((c.key.lower(), None) for c in statement.conditions)
            else:
                continue
            break
        else:
            found = tuple(sorted(keys))
        if len(self._tested) < DECISIONS_KEPT:
            self._tested[action] = found
        return found

    def remembered(self, check: actions.Check, keys: Mapping[str, tuple[str, ...]]) -> Decision | None:
        """The decision an earlier request made on the same action and resource with the same values
        of every condition key that could change it."""
        tested = self.tested(check.action)
        if tested is None:
            return None
        return self.decisions.get((check.action, check.resource, tuple(keys.get(k) for k in tested)))

    def remember(self, check: actions.Check, keys: Mapping[str, tuple[str, ...]], decision: Decision) -> None:
        """Keep ``decision`` for the next requests on the same action and resource whose tested
        condition keys have the same values: nothing else of a request enters the identity side's
        decision, and the principal is rebuilt when IAM changes. The caller keeps only decisions no
        resource policy took part in."""
        tested = self.tested(check.action)
        if tested is None:
            return
        if len(self.decisions) >= DECISIONS_KEPT:
            self.decisions.clear()  # time keys (aws:CurrentTime) make new entries every second
        self.decisions[(check.action, check.resource, tuple(keys.get(k) for k in tested))] = decision


# Every unsigned request: no account, no policies, one shared set of remembered decisions.
_ANONYMOUS = _Principal(Caller(PrincipalKind.ANONYMOUS, "", ANONYMOUS_ARN), unique_id=ANONYMOUS_ARN)


def _substitutes(statement: Statement) -> bool:
    """Whether a statement names a policy variable (``${aws:username}``) in a resource or a
    condition value."""
    return any("${" in r for r in statement.resources or ()) or any(
        "${" in v for c in statement.conditions for v in c.values
    )


@dataclass(frozen=True)
class _Bucket:
    """The S3 bucket a check acts on: its owner, and its policy (parsed) when it has one."""

    owner: str
    policy: PolicyDocument | None


class IamAuthorizer:
    """IAM's decision on every request (the pipeline's :class:`~lamina.api.pipeline.Authorizer`)."""

    # The pipeline lets unsigned S3 requests reach this authorizer (as the anonymous caller): it
    # allows them only what a bucket policy grants everyone.
    decides_anonymous = True

    def __init__(
        self,
        iam: IamStore,
        *,
        lookups: actions.Lookups,
        resource_policies: Mapping[str, ResourcePolicy],
        clock: Callable[[], float],
        resource_tags: Mapping[str, ResourceTags] | None = None,
        buckets: BucketAccess | None = None,
        endpoint_origin: Callable[[str], EndpointOrigin | None] | None = None,
        endpoint_policies: Callable[[EndpointOrigin], Sequence[str]] | None = None,
    ) -> None:
        """``endpoint_origin``: the VPC endpoints a request from a client address came through
        (``runtime.public_api``), ``endpoint_policies`` their policy documents: a request through
        endpoints needs their policies to allow it too, and has ``aws:SourceVpc``/``aws:SourceVpce``."""
        self._endpoint_origin = endpoint_origin
        self._endpoint_policies = endpoint_policies
        self._iam = iam
        self._buckets = buckets
        self._lookups = lookups
        self._resource_policies = dict(resource_policies)
        self._resource_tags_of = dict(resource_tags or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._identities: dict[tuple[str, IdentityKind, str], tuple[int, Identity | None]] = {}
        self._sessions: OrderedDict[str, tuple[int, _Principal]] = OrderedDict()
        self._roots: dict[str, _Principal] = {}
        self._session_users: OrderedDict[str, str] = OrderedDict()  # GetSessionToken key -> UserId

    # -- the stage ------------------------------------------------------------------------------------

    def authorize(self, request: AuthorizationRequest) -> None:
        """Return when IAM would allow ``request``; raise AWS's AccessDenied when it would not."""
        if request.anonymous and request.service != "s3":
            # Only S3 serves unsigned requests (the pipeline refuses them for every other service).
            raise AccessDeniedException(S3_ACCESS_DENIED)
        if (request.service, request.operation) in actions.NEVER_DENIED:
            return
        p = request.principal
        if request.service == "iam" and p.access_key_id.startswith("ASIA") and ":assumed-role/" not in p.arn:
            # GetSessionToken's credentials: "You cannot call any IAM API operations unless MFA
            # authentication information is included in the request" (STS API Reference,
            # GetSessionToken); lamina has no MFA, and IAM answers InvalidClientTokenId.
            raise UnrecognizedClientException(NO_MFA_SESSION)
        principal = _ANONYMOUS if request.anonymous else self._principal(request)
        caller = principal.caller
        checks = actions.checks(
            request.service,
            request.operation,
            account=caller.account,
            region=request.region,
            params=request.params,
            lookups=self._lookups,
            caller_user=principal.user_name,
        )
        origin = self._origin(request)
        if checks is None:
            checks = (actions.Check(f"{request.service}:{request.operation}", "*", {}),)
            if origin is not None:
                self._through_endpoints(request, principal, checks, origin)
            if caller.kind is PrincipalKind.ROOT:
                return
        elif origin is not None:
            self._through_endpoints(request, principal, checks, origin)
        for check in checks:
            self.check(request, principal, check)

    def _origin(self, request: AuthorizationRequest) -> EndpointOrigin | None:
        if self._endpoint_origin is None or not request.source_ip:
            return None
        return self._endpoint_origin(request.source_ip)

    def _through_endpoints(
        self,
        request: AuthorizationRequest,
        principal: _Principal,
        checks: Sequence[actions.Check],
        origin: EndpointOrigin,
    ) -> None:
        """Raise AWS's denial unless the policy of every endpoint the request came through allows
        each check (VPC User Guide, "Control access to VPC endpoints using endpoint policies")."""
        texts = self._endpoint_policies(origin) if self._endpoint_policies is not None else ()
        for text in texts:
            document = _parsed(text, PolicyKind.RESOURCE)
            for check in checks:
                if document is None:  # not a policy IAM can read: it allows nothing
                    decision = Decision(False, PolicyType.VPC_ENDPOINT, False)
                else:
                    keys = self._keys(request, principal, check, _owner(check.resource), tags=False)
                    decision = endpoint_decision(
                        principal.caller, check.action, check.resource, document, keys
                    )
                if not decision.allowed:
                    raise self._denied(request, principal, check, decision)

    def check(self, request: AuthorizationRequest, principal: _Principal, check: actions.Check) -> None:
        """Raise AWS's denial unless ``principal`` may make ``check``."""
        caller = principal.caller
        owner = _owner(check.resource)
        # CreateBucket acts on a bucket that is not there yet: the caller's identity side decides
        # (a name another account holds is the handler's BucketAlreadyExists).
        bucket = self._bucket(check.resource) if owner is None and check.action != CREATE_BUCKET else None
        if bucket is not None:
            owner = bucket.owner
        if (
            caller.kind is PrincipalKind.ROOT
            and owner in (None, caller.account)
            and (bucket is None or bucket.policy is None or check.action.lower() in POLICY_MANAGEMENT)
        ):
            return  # the root user may do anything to its own account (AssumeRole: its handler refuses)
        if check.action == PASS_ROLE and owner not in (None, caller.account):
            raise AccessDeniedException(CROSS_ACCOUNT_PASS_ROLE)
        decision = self._decide(request, principal, check, owner, bucket)
        if not decision.allowed:
            if request.service == "s3" and (
                caller.kind is PrincipalKind.ANONYMOUS or owner not in (None, caller.account)
            ):
                raise AccessDeniedException(S3_ACCESS_DENIED)
            raise self._denied(request, principal, check, decision)

    def _decide(
        self,
        request: AuthorizationRequest,
        principal: _Principal,
        check: actions.Check,
        owner: str | None,
        bucket: _Bucket | None = None,
    ) -> Decision:
        caller = principal.caller
        keys = self._keys(request, principal, check, owner, tags=principal.reads_resource_tags)
        remembered = principal.remembered(check, keys)
        # A remembered decision is the identity side's alone. In an S3 bucket it is the answer only
        # when no bucket policy can change it: the bucket's owner (and so the decision) may not be
        # the one it was made for, and a bucket policy may Deny.
        if remembered is not None and (
            bucket is None or remembered.explicit or (bucket.policy is None and owner == caller.account)
        ):
            return remembered
        # (Made afresh otherwise: a remembered one may be for another owner.)
        decision = decide(caller, check.action, check.resource, owner, principal.policies, normalised=keys)
        if (decision.explicit or owner is None) or (
            decision.allowed and owner == caller.account and check.action.lower() != ASSUME_ROLE
        ):
            # No resource policy can change these: the next request with the same tested keys gets it.
            principal.remember(check, keys, decision)
            if bucket is None or decision.explicit:
                return decision
        if bucket is not None:
            resource_policy = bucket.policy
        else:
            resource_policy = self._resource_policy(check.resource, check.action)
        if resource_policy is None:
            return decision
        if not principal.reads_resource_tags and _mentions_resource_tags(resource_policy):
            keys = self._keys(request, principal, check, owner, tags=True)
        policies = PolicySet(principal.identity, principal.boundary, principal.session, resource_policy)
        return decide(caller, check.action, check.resource, owner, policies, normalised=keys)

    def _bucket(self, resource: str) -> _Bucket | None:
        """The S3 bucket ``resource`` is (or is in), when it exists."""
        if self._buckets is None:
            return None
        name = bucket_of(resource)
        found = self._buckets(name) if name is not None else None
        if found is None:
            return None
        owner, text = found
        return _Bucket(owner, _parsed(text, PolicyKind.RESOURCE) if text else None)

    # -- principals --------------------------------------------------------------------------------

    def _principal(self, request: AuthorizationRequest) -> _Principal:
        p = request.principal
        if p.is_root:
            root = self._roots.get(p.account_id)
            if root is None:  # one per account, made once
                root = _Principal(
                    Caller(PrincipalKind.ROOT, p.account_id, p.arn),
                    context={"aws:userid": p.account_id},
                    unique_id=p.account_id,
                )
                self._roots[p.account_id] = root
            return root
        arn = Arn.parse(p.arn)
        if arn is not None and arn.service == "sts" and arn.resource.startswith("assumed-role/"):
            return self._session(p.access_key_id, p.account_id, p.arn)
        name = p.arn.rsplit("/", 1)[-1]
        identity = self._identity(p.account_id, IdentityKind.USER, name)
        caller = Caller(PrincipalKind.USER, p.account_id, p.arn)
        if identity is None or not self._same_user(p.access_key_id, identity):
            # A user deleted while its keys were cached, or a GetSessionToken session of a user
            # deleted and made again under its name (another UserId): nothing is allowed.
            return _Principal(caller, user_name=name)
        context: dict[str, str | tuple[str, ...]] = {
            "aws:username": identity.name,
            "aws:userid": identity.unique_id,
            **{f"aws:PrincipalTag/{k}": v for k, v in identity.tags.items()},
        }
        return _Principal(
            caller,
            _documents(identity.documents),
            _parsed(identity.boundary, PolicyKind.IDENTITY) if identity.boundary else None,
            None,
            context,
            identity.name,
            identity.unique_id,
        )

    def _same_user(self, access_key: str, identity: Identity) -> bool:
        """Whether a user's credentials are the user ``identity`` is: long-term keys belong to the
        user they are stored with; a GetSessionToken session to the user (UserId) that asked."""
        if not access_key.startswith("ASIA"):
            return True
        with self._lock:
            user_id = self._session_users.get(access_key)
        if user_id is None:
            session = self._iam.session(access_key)
            user_id = session.user_id if session is not None else ""
            with self._lock:
                self._session_users[access_key] = user_id
                while len(self._session_users) > SESSIONS_KEPT:
                    self._session_users.popitem(last=False)
        # Sessions issued before users had ids here carry the user's ARN.
        return user_id in (identity.unique_id, identity.arn)

    def _identity(self, account: str, kind: IdentityKind, name: str) -> Identity | None:
        generation = self._iam.generation
        key = (account, kind, name.lower())
        cached = self._identities.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        identity = load_identity(self._iam, account, kind, name)
        if len(self._identities) > SESSIONS_KEPT:
            self._identities.clear()
        self._identities[key] = (generation, identity)
        return identity

    def _session(self, access_key: str, account: str, arn: str) -> _Principal:
        generation = self._iam.generation
        with self._lock:
            cached = self._sessions.get(access_key)
            if cached is not None and cached[0] == generation:
                self._sessions.move_to_end(access_key)
                return cached[1]
        principal = self._load_session(access_key, account, arn)
        with self._lock:
            self._sessions[access_key] = (generation, principal)
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)
        return principal

    def _load_session(self, access_key: str, account: str, arn: str) -> _Principal:
        session = self._iam.session(access_key)
        role_arn = session.role_arn if session is not None else ""
        role = Arn.parse(role_arn)
        caller = Caller(PrincipalKind.ROLE_SESSION, account, arn, role_arn or None)
        identity = None
        if session is not None and role is not None and role.role_name is not None:
            identity = self._identity(role.account, IdentityKind.ROLE, role.role_name)
        # The role is gone, or is another role by the same name (a new RoleId: IAM User Guide,
        # "Unique identifiers"): the old role's sessions can do nothing.
        if session is None or identity is None or session.user_id.split(":", 1)[0] != identity.unique_id:
            return _Principal(caller)
        documents: list[PolicyDocument] = []
        if session.policy:
            documents.extend(_documents((session.policy,)))
        for policy_arn in session.policy_arns:
            text = self._managed_document(account, policy_arn)
            if text is not None:
                documents.extend(_documents((text,)))
        has_session_policy = bool(session.policy or session.policy_arns)
        tags = {**identity.tags, **session.tags}
        context: dict[str, str | tuple[str, ...]] = {
            "aws:PrincipalArn": role_arn,
            "aws:userid": session.user_id,
            **{f"aws:PrincipalTag/{k}": v for k, v in tags.items()},
        }
        if session.source_identity:
            context["aws:SourceIdentity"] = session.source_identity
        return _Principal(
            caller,
            _documents(identity.documents),
            _parsed(identity.boundary, PolicyKind.IDENTITY) if identity.boundary else None,
            tuple(documents) if has_session_policy else None,
            context,
            None,
            session.user_id,
        )

    def _managed_document(self, account: str, policy_arn: str) -> str | None:
        managed = MANAGED.get(policy_arn)
        if managed is not None:
            return managed.document
        found = self._iam.get_policy(account, policy_arn)
        return found[1] if found is not None else None

    # -- resources and context -------------------------------------------------------------------

    def _resource_policy(self, resource: str, action: str) -> PolicyDocument | None:
        arn = Arn.parse(resource)
        if arn is None:
            return None
        if arn.service == "iam" and not action.lower().startswith("sts:"):
            # A role's trust policy is the resource policy of assuming it (sts:AssumeRole,
            # sts:TagSession, ...) and of nothing else: one that names a user with "Action": "*"
            # does not let that user manage the role (IAM roles have no other resource policy).
            return None
        reader = self._resource_policies.get(arn.service)
        text = reader(arn) if reader is not None else None
        if text is None:
            return None
        kind = PolicyKind.TRUST if arn.service == "iam" else PolicyKind.RESOURCE
        return _parsed(text, kind)

    def _request_keys(self, request: AuthorizationRequest, owner: str | None) -> dict[str, str]:
        """The global condition keys of this request (not of its principal), by their names."""
        now = int(self._clock())
        secure = request.secure_transport or _loopback(request.source_ip)
        keys = {
            "aws:RequestedRegion": request.region,
            "aws:CurrentTime": _iso(now),
            "aws:EpochTime": str(now),
            # True over TLS and, documented, on loopback: policies that demand TLS work locally.
            "aws:SecureTransport": "true" if secure else "false",
        }
        origin = self._origin(request)
        if origin is not None:  # through VPC endpoints: no public address, the VPC's keys
            keys.update(origin.condition_keys())
        elif request.source_ip:
            keys["aws:SourceIp"] = request.source_ip
        if owner is not None:
            keys["aws:ResourceAccount"] = owner
        return keys

    def _keys(
        self,
        request: AuthorizationRequest,
        principal: _Principal,
        check: actions.Check,
        owner: str | None,
        *,
        tags: bool,
    ) -> dict[str, tuple[str, ...]]:
        """Every condition key of the request, normalised (lower-case names, tuples of values): the
        principal's were normalised once. The resource's tags only with ``tags``: no policy in play
        asks for them otherwise."""
        keys = dict(principal.keys)
        for key, value in self._request_keys(request, owner).items():
            keys[key.lower()] = (value,)
        if check.context:
            keys.update(normalise_context(check.context))
        if tags:
            for key, value in self._resource_tags(check.resource).items():
                keys[f"aws:resourcetag/{key.lower()}"] = (value,)
        return keys

    def _context(
        self, request: AuthorizationRequest, principal: _Principal, check: actions.Check, owner: str | None
    ) -> dict[str, str | tuple[str, ...]]:
        """The same keys by their own names, for the decoded authorization message."""
        caller = principal.caller
        context: dict[str, str | tuple[str, ...]] = {
            "aws:PrincipalAccount": caller.account,
            "aws:PrincipalArn": caller.arn,
            "aws:PrincipalType": caller.kind.value,
            **principal.context,
            **self._request_keys(request, owner),
            **check.context,
        }
        for key, value in self._resource_tags(check.resource).items():
            context[f"aws:ResourceTag/{key}"] = value
        return context

    def _resource_tags(self, resource: str) -> Mapping[str, str]:
        """aws:ResourceTag/*: the tags of the IAM user or role a request acts on, or of another
        service's resource by that service's reader (a Lambda function's)."""
        if not resource.startswith("arn:aws:"):
            return {}
        arn = Arn.parse(resource)
        if arn is None or not arn.account.isdigit():
            return {}
        if arn.service != "iam":
            reader = self._resource_tags_of.get(arn.service)
            return reader(arn) if reader is not None else {}
        kind, _, rest = arn.resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        found: Mapping[str, object] | None = None
        if kind == "role" and name:
            found = self._iam.get_role(arn.account, name)
        elif kind == "user" and name:
            found = self._iam.get_user(arn.account, name)
        tags = found.get("Tags") if found is not None else None
        if not isinstance(tags, list):
            return {}
        return {str(t.get("Key")): str(t.get("Value", "")) for t in tags if isinstance(t, dict)}

    # -- denials -------------------------------------------------------------------------------------

    def _denied(
        self, request: AuthorizationRequest, principal: _Principal, check: actions.Check, decision: Decision
    ) -> AccessDeniedException:
        caller = principal.caller
        if request.service == "sts" and isinstance(request.params.get("RoleArn"), str):
            # Decided on the role's own ARN, named as the caller spelt it: the answer tells no one
            # the path or case of another account's role (nor that it exists).
            check = actions.Check(check.action, request.params["RoleArn"], check.context)
        if (
            check.action.lower() == ASSUME_ROLE
            and decision.denied_by is PolicyType.RESOURCE
            and not decision.explicit
        ):
            # The words STS uses when the role's trust policy does not name the caller.
            return AccessDeniedException(
                f"User: {caller.arn} is not authorized to perform: {check.action} on resource: {check.resource}"
            )
        if request.service == "iam":
            shown = self._iam_resource_name(check, principal.caller.account)
            return AccessDeniedException(denial_message(caller.arn, check.action, shown, decision))
        if request.service != "ec2":
            return AccessDeniedException(denial_message(caller.arn, check.action, check.resource, decision))
        # EC2 shows no resource for actions on none, and encodes the decision for mutating calls
        # (decoded by sts:DecodeAuthorizationMessage).
        sentence = denial_message(
            caller.arn, check.action, check.resource, decision, show_resource=check.resource != "*"
        )
        message = f"{EC2_UNAUTHORIZED} {sentence}"
        if actions.is_mutating(request.service, request.operation):
            context = self._context(request, principal, check, _owner(check.resource))
            decoded = self._decoded(principal, check, decision, context)
            encoded = self._iam.save_authorization_message(caller.account, decoded, self._clock())
            message += f". Encoded authorization failure message: {encoded}"
        return AccessDeniedException(message)

    def _iam_resource_name(self, check: actions.Check, account: str) -> str:
        """How IAM names the resource in its denials: an existing user, role or group of the
        caller's ``account`` as ``role NAME`` (as in ``... iam:GetRole on resource: role my-role
        because ...``), anything else (one being created, a policy, another account's entity, which
        must not tell whether it exists) by its ARN."""
        arn = Arn.parse(check.resource)
        if (
            arn is None
            or arn.service != "iam"
            or not check.action.startswith("iam:")
            or arn.account != account
        ):
            return check.resource
        kind, _, rest = arn.resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        found: Mapping[str, object] | None = None
        if kind == "role" and name:
            found = self._iam.get_role(arn.account, name)
        elif kind == "user" and name:
            found = self._iam.get_user(arn.account, name)
        elif kind == "group" and name:
            found = self._iam.get_group(arn.account, name)
        return f"{kind} {name}" if found is not None else check.resource

    @staticmethod
    def _decoded(
        principal: _Principal, check: actions.Check, decision: Decision, context: ContextValues
    ) -> str:
        """The decision as ``DecodeAuthorizationMessage`` shows it (AWS's JSON layout: the deny
        statements that decided, when one did)."""
        matched = (
            [m for m in decision.matched if m.statement.effect is Effect.DENY] if decision.explicit else []
        )
        items = [
            {"key": key, "values": _items((value,) if isinstance(value, str) else value)}
            for key, value in sorted(context.items())
        ]
        return json.dumps(
            {
                "allowed": False,
                "explicitDeny": decision.explicit,
                "matchedStatements": {"items": [_statement_item(m.statement, principal) for m in matched]},
                "failures": {"items": []},
                "context": {
                    "principal": {"id": principal.unique_id, "arn": principal.caller.arn},
                    "action": check.action,
                    "resource": check.resource,
                    "conditions": {"items": items},
                },
            },
            separators=(",", ":"),
        )


def _items(values: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    return {"items": [{"value": v} for v in values]}


def _statement_item(statement: Statement, principal: _Principal) -> dict[str, object]:
    """One matched statement as a decoded authorization message lists it."""
    return {
        "statementId": statement.sid or "",
        "effect": statement.effect.value.upper(),
        "principals": _items((principal.unique_id.split(":", 1)[0],)),
        "principalGroups": {"items": []},
        "actions": _items(statement.actions),
        "resources": _items(statement.resources or ()),
        "conditions": {"items": [{"key": c.key, "values": _items(c.values)} for c in statement.conditions]},
    }


def _owner(resource: str) -> str | None:
    """The account that owns ``resource`` (None for ``*`` and AWS's own, e.g. managed policies)."""
    if resource == "*":
        return None
    arn = Arn.parse(resource)
    if arn is None or not arn.account.isdigit():
        return None
    return arn.account


@lru_cache(maxsize=4)
def _iso(now: int) -> str:
    """aws:CurrentTime: the second, in ISO 8601 (a second's requests share one string)."""
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=256)
def _loopback(address: str) -> bool:
    try:
        return bool(address) and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
