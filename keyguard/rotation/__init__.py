"""Safe key rotation: which keys are due, a pure plan, a journaled step runner, rotators.

Data flows one way: ``schedule`` picks due keys from policy findings, ``plan`` turns them
into a deterministic :class:`~keyguard.rotation.plan.RotationPlan`, ``apply`` runs it one
step at a time through a rotator from ``rotators/`` and the store writers in ``stores/``,
and ``journal`` records every step before and after it runs so an interrupted rotation
can be finished or rolled back. Nothing here imports boto3 at module level.
"""
