"""What of a job's spec a Launch carries to an agent (agent.proto, Launch.spec): the job as submitted, less what is
the federator's alone.

- Its owner (federator.io/user, federator.io/groups): a provider runs an organisation's work and learns its queue
  (its tenant), never which of the organisation's people submitted it; who did is the federator's to account and
  authorise.
- Its dependency (spec.depends_on): the federator waits for it before it places the job, so by the launch it is met
  and the agent has nothing to do with it. Sent, it stopped every `afternotok` job on an agent before 0.15.0, which
  checks the condition as a submit does and refused each launch as malformed until the job ended Failed after
  --max-refusals (outside upgrade QA U1). Left out for every agent: no agent ever needed it, so nothing depends on
  an agent's Hello.features.
"""

from __future__ import annotations

from dataclasses import replace

from federator.model import JobSpec
from federator.model.dependency import DEPENDS_ON_ANNOTATION
from federator.security.authz import recorded_owner


def launched_spec(spec: JobSpec) -> JobSpec:
    """The spec a Launch sends: without its recorded owner and without its dependency."""
    kept = recorded_owner(spec, "")
    return replace(kept, annotations=tuple((k, v) for k, v in kept.annotations if k != DEPENDS_ON_ANNOTATION))


__all__ = ["launched_spec"]
