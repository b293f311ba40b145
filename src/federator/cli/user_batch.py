"""`federator certs issue --users-from FILE`: an organisation's users issued at once, or none of them.

Why: onboarding an organisation of 200 users was 200 `certs issue --user` runs, half a second each, nearly all
of it starting Python (outside QA, tenants F5: 1,000 organisations' users took ~8 minutes). Here the CA key is
read once and each pair costs a key generation.

All or nothing: the whole file is checked before the first key is written, and any bad line refuses the batch,
every problem named by its line (`users.txt:7: 'Bob': must be a lower-case DNS name ...`), so a typo at line 180
does not leave 179 users issued and the operator guessing where to resume. A user who already has a certificate
in the folder is a problem too unless `--renew` says re-issuing is meant: a line repeated from last month's file
would otherwise replace a working user's key without a word.

The file: one user a line, `name` or `name,group,group` (`#` starts a comment); or YAML (`.yaml`, `.yml`): a list
of `{name, groups}` or a mapping of name to its groups. `--group` adds groups to every user (the organisation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, check_group, check_name
from federator.security.reinstate import revoked_names


@dataclass(frozen=True, slots=True)
class UserLine:
    """One user of the file, and where it was (`users.txt:7`, `users.yaml: entry 3`)."""

    where: str
    name: str
    groups: tuple[str, ...]


class BatchError(ValueError):
    """The batch refused: every problem, each naming its line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _text_lines(path: Path, text: str) -> list[UserLine]:
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            name, *groups = (part.strip() for part in line.split(","))
            out.append(UserLine(f"{path}:{number}", name, tuple(groups)))
    return out


def _yaml_lines(path: Path, doc: object) -> list[UserLine]:
    if doc is None:
        return []
    if isinstance(doc, Mapping):
        doc = [{"name": name, "groups": groups} for name, groups in doc.items()]
    if not isinstance(doc, Sequence) or isinstance(doc, str):
        raise BatchError([f"{path}: must be a list of {{name, groups}} or a mapping of user name to groups"])
    out, problems = [], []
    for number, entry in enumerate(doc, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, Mapping) or set(entry) - {"name", "groups"}:
            problems.append(f"{where}: must be {{name, groups}}, got {entry!r}"[:300])
            continue
        groups = entry.get("groups") or []
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            problems.append(f"{where}: groups: must be a list of group names, got {groups!r}"[:300])
            continue
        out.append(UserLine(where, str(entry.get("name") or ""), tuple(groups)))
    if problems:
        raise BatchError(problems)
    return out


def read_users(path: Path, *, extra_groups: Sequence[str] = ()) -> list[UserLine]:
    """The users of the file, with `extra_groups` added to each; BatchError names every bad line."""
    from federator.yamltext import YamlFileError, load_yaml_text, read_text

    try:
        text = read_text(path)
    except (OSError, ValueError) as exc:
        raise BatchError([f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}"]) from exc
    if path.suffix in (".yaml", ".yml"):
        try:
            users = _yaml_lines(path, load_yaml_text(text))
        except YamlFileError as exc:
            raise BatchError([f"{path}: {exc}"]) from exc
    else:
        users = _text_lines(path, text)
    users = [UserLine(u.where, u.name, tuple(dict.fromkeys([*u.groups, *extra_groups]))) for u in users]
    if not users:
        raise BatchError([f"{path}: names no user"])
    return users


def problems_of(users: Sequence[UserLine], certs: CertsDir, *, renew: bool) -> list[str]:
    """Every reason to refuse the batch, each naming its line: a bad name or group, a user named twice, a user
    revoked by name (or a revocation list that does not parse), a user who already has a certificate here
    (unless `renew`)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    try:
        revoked = revoked_names(certs)
    except PkiError as exc:
        return [str(exc)]
    for user in users:
        try:
            check_name(IdentityKind.USER, user.name)
            for group in user.groups:
                check_group(group)
        except PkiError as exc:
            problems.append(f"{user.where}: {exc}".replace(": --user:", ": user:").replace(": --group:", ": group:"))
            continue
        if user.name in seen:
            problems.append(f"{user.where}: user {user.name!r} again (first at {seen[user.name]})")
            continue
        seen[user.name] = user.where
        identity = Identity(IdentityKind.USER, user.name)
        if identity in revoked:  # its new certificate would be refused too (outside DR QA, D5)
            problems.append(f"{user.where}: user {user.name!r} is revoked by name in {certs.revoked}; re-admit "
                            f"them under a new key with `federator certs reinstate --dir {certs.root} --user "
                            f"{user.name}`, not in a batch")
            continue
        cert = certs.cert(identity)
        if not renew and cert.exists():
            problems.append(f"{user.where}: user {user.name!r} already has a certificate ({cert}); pass --renew to "
                            "issue it again (the old one stays valid until it expires or is revoked)")
    return problems


__all__ = ["BatchError", "UserLine", "problems_of", "read_users"]
