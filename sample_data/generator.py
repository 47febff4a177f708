"""The public entry point: ``generate(config) -> GeneratedData``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import sample_data.ids as ids
from sample_data.catalogue import Catalogue, assign_merchants, build_catalogue
from sample_data.config import SCENARIOS, GeneratorConfig
from sample_data.frame import add_missing, build_tables, combine, merchant_table
from sample_data.normal import normal_plan
from sample_data.population import Pools, build_population
from sample_data.scenarios import REGISTRY, Context, allocate_sessions
from sample_data.scenarios.history import add_family_devices, flash_sales
from sample_data.sessions import render_parts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratedData:
    """What one run produced.

    Attributes:
        events: the canonical event table (core.schema.EVENT_COLUMN_NAMES), in arrival order:
            mostly by time, with a few late rows and duplicate deliveries.
        labels: long format, columns level ('event' | 'session' | 'user'), entity_id,
            is_anomaly (bool), scenario ('normal' or a scenario name).
        users: one row per account with events: user_id, persona ('fraud_account' for
            accounts fraudsters opened), home_country, n_sessions.
        config: the configuration that produced it.
        truth: the entity-level answer key (not written to Parquet): one row per
            compromised_merchant and device_farm incident and per hard negative (flash_sale,
            family_device), with kind, entity (the event column: merchant_id, device_id or ip),
            entity_id, start and end (UTC; NaT where it spans the window), label (the
            sessions' scenario: the incident's, or 'normal'), subtle, n_sessions, n_accounts.
    """

    events: pd.DataFrame
    labels: pd.DataFrame
    users: pd.DataFrame
    config: GeneratorConfig
    truth: pd.DataFrame = field(default_factory=pd.DataFrame)


def generate(config: GeneratorConfig) -> GeneratedData:
    """Generate labelled e-commerce sessions; the same config always gives the same data.

    >>> data = generate(GeneratorConfig(users=50, days=3, seed=1, anomaly_rate=0.1))
    >>> sorted(data.labels["level"].unique())
    ['event', 'session', 'user']
    """
    # Streams 0-4 build the world, 5.. one per scenario (5 + its index in SCENARIOS), 40-42 the
    # merchants and the hard negatives. Spawned children do not depend on how many are spawned,
    # so new streams leave every earlier draw as it was.
    extra = 40
    assert 5 + len(SCENARIOS) <= extra
    seeds = np.random.SeedSequence(config.seed).spawn(extra + 3)
    streams = [np.random.default_rng(s) for s in seeds]
    pools = Pools()
    catalogue = assign_merchants(streams[extra], build_catalogue(streams[0], config.items))
    pop = build_population(streams[1], config.users, config.days, config.lookalike_share, pools)
    truth, family = add_family_devices(streams[extra + 1], pop, max(2, config.users // 1000))
    plan = normal_plan(streams[2], pop, config.days, config.start_weekday, config.activity)
    parts = render_parts(plan, streams[2], catalogue, pools)

    ctx = Context(rng=streams[extra + 2], pop=pop, pools=pools, cat=catalogue, days=config.days,
                  start_weekday=config.start_weekday, subtle_share=config.subtle_share,
                  normal=parts, truth=truth)
    ctx.claimed = np.zeros(pop.n, dtype=bool)
    ctx.claimed[family] = True  # families stay normal: no scenario takes their accounts
    parts.extend(flash_sales(ctx, len(plan)))
    counts = allocate_sessions(sum(len(p) for p, _ in parts), config.anomaly_rate,
                               config.scenarios)
    ctx.normal = list(parts)
    for name in SCENARIOS:  # a fixed order, whatever order the config lists them in
        if name in counts:
            ctx.rng = streams[5 + SCENARIOS.index(name)]
            parts.append(REGISTRY[name](ctx, counts[name]))
    all_plans, events = combine(parts, pools, catalogue)
    add_missing(events, streams[4], config.missing_rate)
    frame, labels, users = build_tables(all_plans, events, pop, pools, catalogue, config,
                                        streams[4])
    log.info("generated %d events in %d sessions for %d users", len(frame), len(all_plans),
             len(users))
    return GeneratedData(events=frame, labels=labels, users=users, config=config,
                         truth=_truth(ctx.truth, pools, catalogue, config))


TRUTH_COLUMNS = ("kind", "entity", "entity_id", "start", "end", "label", "subtle", "n_sessions",
                 "n_accounts")


def _truth(records: list[dict[str, object]], pools: Pools, catalogue: Catalogue,
           config: GeneratorConfig) -> pd.DataFrame:
    """The scenarios' truth records with the entities' ids as they appear in the events."""
    if not records:
        return pd.DataFrame(columns=list(TRUTH_COLUMNS))
    frame = pd.DataFrame(records)
    index = frame["index"].to_numpy(np.int64)
    entity_id = np.empty(len(frame), dtype=object)
    for entity, rows in frame.groupby("entity").indices.items():
        if entity == "merchant_id":
            table = merchant_table(catalogue)
            values = ids.gather_ids(table, index[rows])
        elif entity == "device_id":
            values = ids.fixed_ids("d", ids.scramble(index[rows]), 10)
        else:
            values = ids.ip_strings(np.concatenate(pools.ip_value)[index[rows]])
        entity_id[rows] = values.to_pylist()
    start_us = np.int64(config.start_us)

    def stamp(ms: pd.Series) -> pd.Series:
        values = ms.to_numpy(np.int64)
        out = (start_us + values * 1000).astype("datetime64[us]")
        return pd.Series(np.where(values < 0, np.datetime64("NaT"), out)).astype(
            "datetime64[us]")

    label = np.where(frame["kind"].isin(SCENARIOS), frame["kind"], "normal")
    return pd.DataFrame({
        "kind": frame["kind"].astype(str), "entity": frame["entity"].astype(str),
        "entity_id": entity_id.astype(str), "start": stamp(frame["start_ms"]),
        "end": stamp(frame["end_ms"]), "label": label.astype(str),
        "subtle": frame["subtle"].astype(bool),
        "n_sessions": frame.get("n_sessions", pd.Series(0, index=frame.index)).fillna(0)
        .astype(np.int64),
        "n_accounts": frame.get("n_accounts", pd.Series(0, index=frame.index)).fillna(0)
        .astype(np.int64),
    })
