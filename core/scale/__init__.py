"""Beyond one machine (issue #27): score event files partitioned by user, in this process or
on a Ray cluster, with results equal to scoring them all in one store.

- ``bundle``: a registered model as bytes, so workers need no shared file system.
- ``partition``: the per-partition steps (canonical rows, the context a partition needs from
  others, scoring) as pure functions over pandas frames and throw-away in-memory stores.
- ``plan``: the same plan run in this process (the reference the Ray engine is tested against).
- ``ray_engine``: the plan on Ray Data (optional extra ``anomalyst[scale]``).
- ``ray_train``: data-parallel training of the torch detectors with Ray Train.

Nothing here is imported by the default install's code paths; Ray is imported only inside
``ray_engine`` and ``ray_train``.
"""
