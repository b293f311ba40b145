"""Who may do what: users and groups, queue access, job visibility, admins. Pure decisions.

Authentication (`security.auth`) says *who* is calling: a user certificate
(the name in its `federator://user/NAME` identity, which is also its subject
CN; its subject O attributes are groups) or a bearer token (its name and
groups in the token file). This module says what that caller may do, from
the tenancy part of the policy file (and Queue objects in Kubernetes mode)::

    tenancy:
      admins: {users: [admin], groups: [platform]}   # act on every job
      groups:                                        # groups the policy defines
        team-a: {users: [alice, bob], jobs: manage}  # members see (view) or also cancel (manage)
    queues:                                          # each job in each other's jobs
      research:
        weight: 1
        access: {users: [carol], groups: [team-a]}  # who may submit here
    defaultQueue: {access: {groups: [staff]}}       # queues without an access list of their own, and
                                                    # queues nobody declared ({anyone: true}: everyone)

Rules, each named in the message of a refusal:

- `admin`: a member of `tenancy.admins` acts on every job and may submit to
  every queue. With no `tenancy.admins` the user `admin` (the certificate
  `federator certs init` makes) is the admin.
- `queue-access`: a queue with an `access` list takes submissions from the
  users and groups it names only (`{anyone: true}`: from everyone); a
  declared queue with none takes anyone's (and so does every queue when the
  policy has no access lists: the behaviour before tenancy existed).
- `undeclared-queue`: under a multi-tenant policy (a `tenancy` section or an
  `access` list anywhere: `TenancyPolicy.multi_tenant`, the same test that
  bounds priorities, `SchedulerConfig.multi_tenant`) whose `defaultQueue` has
  no access list, a queue neither the policy file nor a Queue object declares
  takes submissions from admins only. Why: such a queue is made on first use
  with defaultQueue's quota and a fair share of its own, and its member
  namespace (the agent's namespacePerQueue) with it, so a tenant free to
  invent names escaped its quota, multiplied its share and submitted into
  another tenant's invented queue and namespace (security findings M5, M6).
  The refusal lists the declared queues the caller may use, and no others.
  Jobs stored before are kept: the rule is one of Submit, not of the store.
- `queue-namespaces`: standalone, under a multi-tenant policy, a queue's jobs go in
  its `namespaces` (else the one of its own name); see `security.namespaces`.
- `owner`: everyone acts on the jobs they submitted. A job records its owner
  (user and groups) in annotations the edge sets from the caller's identity,
  whatever the submitted spec said.
- `group`: members of a group the policy defines (`tenancy.groups`) see each
  other's jobs (`jobs: view`) or also cancel them (`jobs: manage`, the
  default). A group exists for sharing only if the policy defines it; groups
  that only a certificate or token names are used for queue access.
- `delegate`: only an identity `tenancy.delegates` names may act on behalf of
  another user, within its entry (`security.delegates`, `security.delegation`).

An insecure (plaintext) federator has no identities; every caller is the
admin `anonymous`, and `federator serve --insecure` says so in its log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from federator.model import Job, JobSpec, LabelOperator, LabelRequirement
from federator.model.job import USER_ANNOTATION  # the owner's key lives with JobSpec.owner; kept importable here
from federator.scheduler.policy import policy_is_multi_tenant
from federator.security.auth import Peer
from federator.security.delegates import Delegate, delegates_from_document
from federator.security.namespaces import bind_namespace, namespaces_from_document, queue_namespaces
from federator.yamltext import YamlFileError, load_yaml_file

GROUPS_ANNOTATION = "federator.io/groups"
DELEGATE_ANNOTATION = "federator.io/delegate"
"""The delegate (tenancy.delegates) that submitted a job on its owner's behalf: set by the federator from the
call, never taken from a spec, so that the delegate's budget (security/delegates.py `budget`) is counted from
the jobs themselves and survives a restart."""
ANONYMOUS = "anonymous"


class Rule(StrEnum):
    """The rule that allowed or refused an action: named in every refusal and audit line."""

    ADMIN = "admin"
    OWNER = "owner"
    GROUP = "group"
    QUEUE_ACCESS = "queue-access"
    OPEN_QUEUE = "open-queue"
    UNDECLARED_QUEUE = "undeclared-queue"
    NAMESPACE = "namespace-selector"
    RESERVED_NAMESPACE = "reserved-namespace"  # Kubernetes mode: kube-* and the federator's own, closed to gRPC
    QUEUE_NAMESPACES = "queue-namespaces"  # standalone, multi-tenant: a queue's jobs go in its namespaces
    DELEGATE = "delegate"  # tenancy.delegates: who may act on behalf of whom (security/delegates.py)


class JobAccess(StrEnum):
    VIEW = "view"
    MANAGE = "manage"


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller as the policy sees them: a user name and every group they are in."""

    user: str
    groups: frozenset[str] = frozenset()  # the credential's and the policy's (tenancy.groups) together
    via: str = "certificate"  # certificate, token, insecure, kubernetes
    admin: bool = False
    claimed: frozenset[str] = frozenset()  # the credential's own groups (or the delegate's): what a job records
    actor: Principal | None = None  # the delegate who sent this call on the user's behalf (tenancy.delegates)

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "groups": sorted(self.groups), "via": self.via, "admin": self.admin}


@dataclass(frozen=True, slots=True)
class Access:
    """Who may use something: users and groups by name, or everyone (`anyone`: the explicit open form, so an
    open defaultQueue under a multi-tenant policy is a choice written down, never an omission)."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    anyone: bool = False

    def admits(self, who: Principal) -> bool:
        return self.anyone or who.user in self.users or bool(who.groups & self.groups)

    def describe(self) -> str:
        if self.anyone:
            return "anyone"
        parts = [f"users [{', '.join(sorted(self.users))}]" if self.users else "",
                 f"groups [{', '.join(sorted(self.groups))}]" if self.groups else ""]
        return " and ".join(p for p in parts if p) or "nobody"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector (matchLabels and matchExpressions, ANDed); empty matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[LabelRequirement, ...] = ()  # the one rule of model/label_requirement.py

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and \
            all(r.matches(labels) for r in self.match_expressions)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for r in self.match_expressions:
            vals = ",".join(sorted(r.values))
            plain = f"{r.key} {r.operator.lower()} ({vals})"
            parts.append({"Exists": r.key, "DoesNotExist": f"!{r.key}"}.get(r.operator, plain))
        return ", ".join(parts) or "everything"


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_from_document(body: Any, where: str, bad: list[str]) -> LabelSelector | None:
    """`{matchLabels: {k: v}, matchExpressions: [{key, operator, values}]}`; None when absent."""
    if body is None:
        return None
    if not isinstance(body, Mapping):
        bad.append(f"{where}: must be a label selector {{matchLabels, matchExpressions}}")
        return None
    for key in body:
        if key not in ("matchLabels", "matchExpressions"):
            bad.append(f"{where}.{key}: is not a known field (known: matchExpressions, matchLabels)")
    labels = body.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        bad.append(f"{where}.matchLabels: must map label keys to string values")
        labels = {}
    reqs: list[LabelRequirement] = []
    raw = body.get("matchExpressions") or []
    if not isinstance(raw, list):
        bad.append(f"{where}.matchExpressions: must be a list of {{key, operator, values}}")
        raw = []
    for i, expr in enumerate(raw):
        at = f"{where}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping) or not isinstance(expr.get("key"), str):
            bad.append(f"{at}: must be {{key, operator, values}}")
            continue
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in _OPERATORS:
            bad.append(f"{at}.operator: must be one of {', '.join(_OPERATORS)}, got {op!r}")
            continue
        if not isinstance(values, list) or (op in ("In", "NotIn")) != bool(values):
            bad.append(f"{at}.values: In and NotIn need values, Exists and DoesNotExist take none")
            continue
        reqs.append(LabelRequirement(expr["key"], LabelOperator(op), tuple(sorted({str(v) for v in values}))))
    return LabelSelector(tuple(sorted((str(k), str(v)) for k, v in labels.items())), tuple(reqs))


@dataclass(frozen=True, slots=True)
class Group:
    members: frozenset[str] = frozenset()
    jobs: JobAccess = JobAccess.MANAGE


@dataclass(frozen=True, slots=True)
class Denied:
    """A refusal: the rule that refused and a message naming it (sent as PERMISSION_DENIED)."""

    rule: Rule
    message: str


@dataclass(frozen=True, slots=True)
class Allowed:
    rule: Rule


@dataclass(frozen=True, slots=True)
class TenancyPolicy:
    admins: Access = Access(users=frozenset({"admin"}))
    groups: Mapping[str, Group] = field(default_factory=dict)
    queue_access: Mapping[str, Access] = field(default_factory=dict)  # queue -> its access list
    default_access: Access | None = None  # queues without a list of their own; None = open
    # Kubernetes mode: the namespaces whose FederatedJobs may use a queue; None = every namespace
    queue_namespaces: Mapping[str, LabelSelector] = field(default_factory=dict)
    default_namespaces: LabelSelector | None = None
    # Standalone: each queue's `namespaces` list, and defaultQueue's (security/namespaces.py)
    namespace_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_namespace_list: tuple[str, ...] | None = None
    declared: frozenset[str] = frozenset()  # the queues the policy file (and Queue objects) declare
    multi_tenant: bool = False  # a `tenancy` section or an access list anywhere (SchedulerConfig.multi_tenant)
    delegates: Mapping[str, Delegate] = field(default_factory=dict)  # tenancy.delegates, by the delegate's name

    @property
    def closes_undeclared(self) -> bool:
        """Whether a queue nobody declared takes admins' submissions only (rule `undeclared-queue`): the policy is
        multi-tenant and defaultQueue gives no access list. A single-tenant policy keeps invented queues open."""
        return self.multi_tenant and self.default_access is None

    def with_queues(self, access: Mapping[str, Access], namespaces: Mapping[str, LabelSelector],
                    declared: Iterable[str] = ()) -> TenancyPolicy:
        """This policy with Queue objects' access lists and namespace selectors on top of the file's; the Queue
        objects' names are declared queues, and an access list on one makes the policy multi-tenant (as
        `backends/kube/queues.with_queues` decides for the scheduler)."""
        return replace(self, queue_access={**self.queue_access, **access},
                       queue_namespaces={**self.queue_namespaces, **namespaces},
                       declared=self.declared | frozenset(declared), multi_tenant=self.multi_tenant or bool(access))


class TenancyError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _names(value: Any, where: str, bad: list[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        bad.append(f"{where}: must be a list of names, got {value!r}"[:200])
        return frozenset()
    return frozenset(value)


def access_from_document(body: Any, where: str, bad: list[str]) -> Access | None:
    """`{users: [...], groups: [...]}` or `{anyone: true}`; None when absent."""
    if body is None:
        return None
    if not isinstance(body, Mapping):
        bad.append(f"{where}: must be a mapping {{users, groups}} or {{anyone: true}}")
        return None
    for key in body:
        if key not in ("users", "groups", "anyone"):
            bad.append(f"{where}.{key}: is not a known field (known: anyone, groups, users)")
    anyone = body.get("anyone", False)
    if not isinstance(anyone, bool):
        bad.append(f"{where}.anyone: must be true or false, got {anyone!r}"[:200])
        anyone = False
    users, groups = _names(body.get("users"), f"{where}.users", bad), _names(body.get("groups"), f"{where}.groups", bad)
    if anyone and (users or groups):
        bad.append(f"{where}.anyone: true admits every caller; drop users and groups, or anyone")
    return Access(users, groups, anyone)


def tenancy_from_document(doc: Mapping[str, Any]) -> TenancyPolicy:
    """The tenancy part of a policy document (`tenancy`, and `access` in `queues` and `defaultQueue`)."""
    bad: list[str] = []
    raw = doc.get("tenancy") or {}
    if not isinstance(raw, Mapping):
        raise TenancyError(["tenancy: must be a mapping {admins, groups, delegates}"])
    for key in raw:
        if key not in ("admins", "groups", "delegates"):
            bad.append(f"tenancy.{key}: is not a known field (known: admins, delegates, groups)")
    delegates = delegates_from_document(raw.get("delegates"), bad)
    admins = access_from_document(raw.get("admins"), "tenancy.admins", bad) or TenancyPolicy().admins
    groups: dict[str, Group] = {}
    raw_groups = raw.get("groups") or {}
    if not isinstance(raw_groups, Mapping):
        bad.append("tenancy.groups: must map group names to {users, jobs}")
    else:
        for name, body in raw_groups.items():
            where = f"tenancy.groups.{name}"
            if not isinstance(body, Mapping):
                bad.append(f"{where}: must be a mapping {{users, jobs}}")
                continue
            for key in body:
                if key not in ("users", "jobs"):
                    bad.append(f"{where}.{key}: is not a known field (known: jobs, users)")
            jobs = body.get("jobs", JobAccess.MANAGE.value)
            if jobs not in {a.value for a in JobAccess}:
                bad.append(f"{where}.jobs: must be view or manage, got {jobs!r}")
                jobs = JobAccess.MANAGE.value
            groups[str(name)] = Group(_names(body.get("users"), f"{where}.users", bad), JobAccess(jobs))
    queue_access: dict[str, Access] = {}
    queue_namespaces: dict[str, LabelSelector] = {}
    lists: dict[str, tuple[str, ...]] = {}
    raw_queues = doc.get("queues") or {}
    if isinstance(raw_queues, Mapping):
        for name, body in raw_queues.items():
            a, sel = queue_tenancy(body, f"queues.{name}", bad)
            if a is not None:
                queue_access[str(name)] = a
            if sel is not None:
                queue_namespaces[str(name)] = sel
            if (listed := namespaces_from_document(body, f"queues.{name}", bad)) is not None:
                lists[str(name)] = listed
    default, default_ns = queue_tenancy(doc.get("defaultQueue") or {}, "defaultQueue", bad)
    default_list = namespaces_from_document(doc.get("defaultQueue"), "defaultQueue", bad)
    if bad:
        raise TenancyError(bad)
    declared = frozenset(str(n) for n in raw_queues) if isinstance(raw_queues, Mapping) else frozenset()
    return TenancyPolicy(admins=admins, groups=groups, queue_access=queue_access, default_access=default,
                         queue_namespaces=queue_namespaces, default_namespaces=default_ns, declared=declared,
                         namespace_lists=lists, default_namespace_list=default_list,
                         multi_tenant=policy_is_multi_tenant(doc), delegates=delegates)


def queue_tenancy(body: Any, where: str, bad: list[str]) -> tuple[Access | None, LabelSelector | None]:
    """A queue's `access` and `namespaceSelector` (policy file queues and Queue objects' spec alike)."""
    if not isinstance(body, Mapping):
        return None, None
    return (access_from_document(body.get("access"), f"{where}.access", bad),
            selector_from_document(body.get("namespaceSelector"), f"{where}.namespaceSelector", bad))


def load_tenancy(path: Path) -> TenancyPolicy:
    """The tenancy part of a policy file (`federator serve --policy`); TenancyError names every bad field."""
    try:
        doc = load_yaml_file(path) or {}
    except YamlFileError as exc:
        raise TenancyError([f"{path}: {exc}"]) from exc
    if not isinstance(doc, Mapping):
        raise TenancyError([f"{path}: must be a mapping"])
    try:
        return tenancy_from_document(doc)
    except TenancyError as exc:
        raise TenancyError([f"{path}: {p}" for p in exc.problems]) from exc


def owner_of(spec: JobSpec) -> tuple[str, frozenset[str]]:
    """The user and groups recorded on a job ("" for a job no user submitted: a FederatedJob)."""
    groups = spec.annotation(GROUPS_ANNOTATION)
    return spec.recorded_user, frozenset(g for g in groups.split(",") if g)


@dataclass(frozen=True, slots=True)
class Submitter:
    """Whom a pending job is charged to (Submit's per-user cap, server/intake.py): the user the federator recorded
    as its owner (`stamp_owner`, from the caller's identity), else its namespace. A FederatedJob made with
    kubectl has no user (`recorded_owner(spec, "")`): whoever may create objects in a namespace submits as it,
    so the namespace is the tenant there. Exactly one of the two is set, so a user and a namespace of the
    same name are counted apart."""

    user: str = ""
    namespace: str = ""

    def __str__(self) -> str:
        return f"user {self.user!r}" if self.user else f"namespace {self.namespace!r}"


def submitter_of(spec: JobSpec) -> Submitter:
    """The owner a job's waiting counts against: its recorded user, else (no user submitted it) its namespace.
    Read as `JobSpec.owner` reads it (`JobSpec.recorded_user`), so the scheduler's owner and this one never
    disagree (tests/security/test_one_owner.py)."""
    user = spec.recorded_user
    return Submitter(user=user) if user else Submitter(namespace=spec.namespace)


def recorded_owner(spec: JobSpec, user: str, groups: str = "") -> JobSpec:
    """The spec with exactly this owner recorded (none when `user` is ""), whatever its annotations said: the
    owner is what the federator recorded, never what a submitted spec or an object's metadata claims. A job of
    no user has no delegate either (a kubectl-made object's annotation claims nothing)."""
    dropped = (USER_ANNOTATION, GROUPS_ANNOTATION) if user else (USER_ANNOTATION, GROUPS_ANNOTATION,
                                                                 DELEGATE_ANNOTATION)
    annotations = {k: v for k, v in spec.annotations if k not in dropped}
    if user:
        annotations[USER_ANNOTATION] = user
        if groups:
            annotations[GROUPS_ANNOTATION] = groups
    return replace(spec, annotations=tuple(sorted(annotations.items())))


def stamp_owner(spec: JobSpec, who: Principal) -> JobSpec:
    """The spec with its owner set from the caller's identity (whatever the client wrote there).

    The groups recorded are the credential's (certificate O, token groups); the policy's groups are read
    when a job is looked at, so taking a user out of a policy group takes their jobs out of it too."""
    annotations = {k: v for k, v in spec.annotations
                   if k not in (USER_ANNOTATION, GROUPS_ANNOTATION, DELEGATE_ANNOTATION)}
    annotations[USER_ANNOTATION] = who.user
    if who.claimed:
        annotations[GROUPS_ANNOTATION] = ",".join(sorted(who.claimed))
    if who.actor is not None:  # a delegate's call: the job counts against its budget too (intake.py)
        annotations[DELEGATE_ANNOTATION] = who.actor.user
    return replace(spec, annotations=tuple(sorted(annotations.items())))


def undeclared_message(queue: str, caller: str, usable: Iterable[str]) -> str:
    """The refusal of a queue nobody declared: the field, the rule, the way out, and the queues this caller may
    use (only those: another tenant's queue names are not theirs to learn from a refusal)."""
    named = list(usable)
    implied = " (the queue of a job that names none)" if queue == "default" else ""
    choice = f"queues {caller} may submit to: {', '.join(named)}" if named else \
        f"{caller} may submit to no declared queue; ask an administrator for one"
    return (f"spec.queue: {Rule.UNDECLARED_QUEUE}: queue {queue!r}{implied} is not declared (by the policy's "
            "queues or a Queue object), and under a policy with tenancy or access lists only tenancy.admins "
            f"may submit to an undeclared queue (defaultQueue has no access list); {choice}")


class Authorizer:
    """Decides each job API call from the caller and the current tenancy policy (swapped in when it changes)."""

    def __init__(self, policy: TenancyPolicy | None = None) -> None:
        self.base = self.policy = policy or TenancyPolicy()

    @property
    def policy(self) -> TenancyPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: TenancyPolicy) -> None:
        self._policy = policy
        member_of: dict[str, set[str]] = {}
        for name, group in policy.groups.items():
            for user in group.members:
                member_of.setdefault(user, set()).add(name)
        self._member_of = {u: frozenset(gs) for u, gs in member_of.items()}  # user -> policy groups, per policy

    def set_queues(self, access: Mapping[str, Access], namespaces: Mapping[str, LabelSelector],
                   declared: Iterable[str] = ()) -> None:
        """Kubernetes mode: the Queue objects (their names, access lists and namespace selectors), over the
        policy file's."""
        self.policy = self.base.with_queues(access, namespaces, declared)

    def namespace(self, queue: str, namespace: str, labels: Mapping[str, str]) -> Allowed | Denied:
        """May a FederatedJob of this namespace (with these labels) use this queue?"""
        selector = self.policy.queue_namespaces.get(queue, self.policy.default_namespaces)
        if selector is None or selector.matches(labels):
            return Allowed(Rule.NAMESPACE)
        where = f"Queue {queue}" if queue in self.policy.queue_namespaces else "defaultQueue"
        return Denied(Rule.NAMESPACE, f"namespace-selector: namespace {namespace!r} may not use queue {queue!r}: "
                                      f"{where} spec.namespaceSelector selects namespaces labelled "
                                      f"{selector.describe()}")

    def principal(self, peer: Peer) -> Principal:
        if peer.via == "insecure":
            return Principal(ANONYMOUS, via="insecure", admin=True)
        name = peer.name or (peer.identity.name if peer.identity is not None else "token")
        groups = set(peer.groups)
        groups.update(self._member_of.get(name, ()))
        who = Principal(name, frozenset(groups), peer.via, claimed=peer.groups)
        return replace(who, admin=self.policy.admins.admits(who))

    def _groups_of(self, user: str, recorded: frozenset[str]) -> frozenset[str]:
        return recorded | self._member_of.get(user, frozenset())

    def groups_of_owner(self, spec: JobSpec) -> frozenset[str]:
        """The groups of a job's owner: recorded on the job (certificate, token) and the policy's for its user."""
        user, recorded = owner_of(spec)
        return self._groups_of(user, recorded) if user else recorded

    def submit(self, who: Principal, queue: str) -> Allowed | Denied:
        if who.admin:
            return Allowed(Rule.ADMIN)
        if self.closed(queue):
            usable = [q for q in sorted(self.policy.declared) if self._admits(who, q)]
            return Denied(Rule.UNDECLARED_QUEUE, undeclared_message(queue, f"user {who.user!r}", usable))
        access = self.policy.queue_access.get(queue, self.policy.default_access)
        if access is None:
            return Allowed(Rule.OPEN_QUEUE)
        if access.admits(who):
            return Allowed(Rule.QUEUE_ACCESS)
        where = f"queues.{queue}.access" if queue in self.policy.queue_access else "defaultQueue.access"
        return Denied(Rule.QUEUE_ACCESS, f"queue-access: user {who.user!r}"
                      f"{' (groups ' + ', '.join(sorted(who.groups)) + ')' if who.groups else ''} may not submit to "
                      f"queue {queue!r}: {where} admits {access.describe()}")

    def place(self, who: Principal, spec: JobSpec) -> JobSpec | Denied:
        """Standalone: the spec in the namespace it goes in, or the refusal (rule queue-namespaces,
        security/namespaces.py); a single-tenant policy leaves every spec as it is."""
        if not self.policy.multi_tenant:
            return spec
        p = self.policy
        placed = bind_namespace(spec, owned=queue_namespaces(spec.queue, p.namespace_lists, p.default_namespace_list,
                                                             p.declared),
                                admin=who.admin, usable=lambda: sorted({
                                    n for q in sorted(p.declared) if isinstance(self.submit(who, q), Allowed)
                                    for n in queue_namespaces(q, p.namespace_lists, p.default_namespace_list,
                                                              p.declared)}))
        return Denied(Rule.QUEUE_NAMESPACES, placed) if isinstance(placed, str) else placed

    def closed(self, queue: str) -> bool:
        """Whether `queue` is one nobody declared and the policy closes such queues to all but admins."""
        return self.policy.closes_undeclared and queue not in self.policy.declared

    def _admits(self, who: Principal, queue: str) -> bool:
        access = self.policy.queue_access.get(queue, self.policy.default_access)
        return access is None or access.admits(who)

    def undeclared(self, queue: str, namespace: str, labels: Mapping[str, str]) -> Denied | None:
        """Kubernetes mode: may a FederatedJob made with kubectl (no user: never an admin) name this queue? The
        refusal lists the declared queues whose namespaceSelector selects its namespace (the rule kubectl's
        FederatedJobs answer to; access lists bind API callers)."""
        if not self.closed(queue):
            return None
        usable = [q for q in sorted(self.policy.declared)
                  if isinstance(self.namespace(q, namespace, labels), Allowed)]
        return Denied(Rule.UNDECLARED_QUEUE, undeclared_message(queue, f"namespace {namespace!r}", usable))

    def job(self, who: Principal, job: Job, *, manage: bool, verb: str = "") -> Allowed | Denied:
        """May `who` see (manage=False: Get, List, Watch) or manage (manage=True: cancel, scale) this job? `verb`:
        what a refusal says they may not do (else "see" or "cancel")."""
        if who.admin:
            return Allowed(Rule.ADMIN)
        owner, recorded = owner_of(job.spec)
        if owner and owner == who.user:
            return Allowed(Rule.OWNER)
        shared = [g for g in sorted(self._groups_of(owner, recorded) & who.groups) if g in self.policy.groups]
        if owner and any(not manage or self.policy.groups[g].jobs is JobAccess.MANAGE for g in shared):
            return Allowed(Rule.GROUP)
        verb = verb or ("cancel" if manage else "see")
        if shared:  # they may see the job (jobs: view): naming it and its owner tells them nothing new
            whose = f"user {owner!r}" if owner else f"namespace {job.spec.namespace!r} (no user submitted it)"
            return Denied(Rule.GROUP, f"user {who.user!r} may not {verb} job {job.job_id}: it belongs to {whose}; "
                                      f"group: your shared groups ({', '.join(shared)}) have jobs: view in "
                                      "tenancy.groups, and you are not in tenancy.admins")
        # They may not see it: neither its id nor its owner (a guessed name told both; the audit line keeps them).
        return Denied(Rule.OWNER, f"user {who.user!r} may not {verb} this job; owner/group: it is not yours, you "
                                  "share no group of tenancy.groups with its owner, and you are not in "
                                  "tenancy.admins")

    def view(self, who: Principal) -> tuple[frozenset[str], frozenset[str]] | None:
        """Whose jobs `who` may see, as an index reads it (server/job_table.py): the owners (themselves, and the
        policy's members of each group they may view) and the groups recorded on jobs; None for every job (an
        administrator). `visible` stays the decision; this only says where to look."""
        if who.admin:
            return None
        viewable = frozenset(g for g in who.groups if g in self.policy.groups)
        owners = {who.user}
        for g in viewable:
            owners.update(self.policy.groups[g].members)
        return frozenset(owners), viewable

    def sees_owner(self, who: Principal, owner: str, recorded: frozenset[str] = frozenset()) -> bool:
        """Whether `who` may see the jobs of `owner` (`recorded`: the groups stamped on one): `visible`'s rule
        for one owner, which usage records (they keep the user, not the job) are held to as well."""
        if who.admin:
            return True
        return self._sees(who, self._viewable(who), owner, recorded)

    def visible(self, who: Principal, jobs: Iterable[Job]) -> list[Job]:
        """The jobs `who` may see (List, Watch): per job, the owner and group rules, without the messages."""
        if who.admin:
            return list(jobs)
        viewable = self._viewable(who)
        return [job for job in jobs if self._sees(who, viewable, *owner_of(job.spec))]

    def _viewable(self, who: Principal) -> set[str]:
        """The policy's groups `who` is in: their members' jobs are `who`'s to see."""
        return {g for g in who.groups if g in self.policy.groups}

    def _sees(self, who: Principal, viewable: set[str], owner: str, recorded: frozenset[str]) -> bool:
        """The owner and group rule for one owner (`recorded`: the groups stamped on its job); not for admins."""
        return bool(owner) and (owner == who.user or bool(self._groups_of(owner, recorded) & viewable))


__all__ = ["ANONYMOUS", "DELEGATE_ANNOTATION", "GROUPS_ANNOTATION", "USER_ANNOTATION", "Access", "Allowed",
           "Authorizer", "Denied",
           "Group", "JobAccess", "LabelSelector", "Principal", "Rule", "Submitter", "TenancyError",
           "TenancyPolicy", "access_from_document", "load_tenancy", "owner_of", "queue_tenancy",
           "recorded_owner", "selector_from_document", "stamp_owner", "submitter_of", "tenancy_from_document",
           "undeclared_message"]
