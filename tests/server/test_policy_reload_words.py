"""What a policy reload's log and audit line say it changed (server/tenancy_change.py): a reload that only adds or
changes queues says so and no more, not "changed tenancy"; a tenancy change names its sections by their paths."""

from __future__ import annotations

import logging

import pytest
from test_policy_reload import V1, Bed, bed  # noqa: F401 (bed: the module's fixture)


@pytest.mark.parametrize(("old", "new", "said"), [
    ("  org-b: {weight: 1, access: {users: [bob]}}\n",
     "  org-b: {weight: 1, access: {users: [bob]}}\n  org-c: {weight: 2, access: {users: [carol]}}\n",
     "added queue org-c"),
    ("org-b: {weight: 1", "org-b: {weight: 5", "changed queue org-b"),
    ("  org-b: {weight: 1, access: {users: [bob]}}\n", "", "removed queue org-b"),
    ("access: {users: [bob]}", "access: {users: [bob, dave]}", "changed queues.org-b.access"),
    ("admins: {users: [root]}}", "admins: {users: [root]}, groups: {ops: {users: [eve]}}}",
     "changed tenancy.groups.ops"),
    ("defaultQueue: {access: {users: [root]}}", "defaultQueue: {access: {users: [root, eve]}}",
     "changed defaultQueue.access"),
], ids=["queue-added", "queue-weight", "queue-removed", "queue-access", "group-added", "default-access"])
def test_a_reload_says_which_sections_changed_and_a_queue_alone_is_no_tenancy_change(
        bed: Bed, old: str, new: str, said: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    assert old in V1
    bed.write(V1.replace(old, new))
    with caplog.at_level(logging.INFO, logger="federator.server"):
        bed.reloads.look()
    (line,) = bed.audited()
    assert (line["action"], line["result"], line["message"]) == ("policy.reload", "accepted", said)
    assert f"reloaded: {said}" in caplog.text
