"""The public entry point: ``generate(config) -> GeneratedData``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sample_data.catalogue import build_catalogue
from sample_data.config import SCENARIOS, GeneratorConfig
from sample_data.frame import add_missing, build_tables, combine
from sample_data.normal import normal_plan
from sample_data.population import Pools, build_population
from sample_data.scenarios import REGISTRY, Context, allocate_sessions
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
    """

    events: pd.DataFrame
    labels: pd.DataFrame
    users: pd.DataFrame
    config: GeneratorConfig


def generate(config: GeneratorConfig) -> GeneratedData:
    """Generate labelled e-commerce sessions; the same config always gives the same data.

    >>> data = generate(GeneratorConfig(users=50, days=3, seed=1, anomaly_rate=0.1))
    >>> sorted(data.labels["level"].unique())
    ['event', 'session', 'user']
    """
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(12)]
    pools = Pools()
    catalogue = build_catalogue(streams[0], config.items)
    pop = build_population(streams[1], config.users, config.days, config.lookalike_share, pools)
    plan = normal_plan(streams[2], pop, config.days, config.start_weekday, config.activity)
    parts = render_parts(plan, streams[2], catalogue, pools)

    counts = allocate_sessions(len(plan), config.anomaly_rate, config.scenarios)
    ctx = Context(rng=streams[3], pop=pop, pools=pools, cat=catalogue, days=config.days,
                  start_weekday=config.start_weekday, subtle_share=config.subtle_share)
    for name in SCENARIOS:  # a fixed order, whatever order the config lists them in
        if name in counts:
            ctx.rng = streams[5 + SCENARIOS.index(name)]
            parts.append(REGISTRY[name](ctx, counts[name]))
    all_plans, events = combine(parts, pools)
    add_missing(events, streams[4], config.missing_rate)
    frame, labels, users = build_tables(all_plans, events, pop, pools, catalogue, config,
                                        streams[4])
    log.info("generated %d events in %d sessions for %d users", len(frame), len(all_plans),
             len(users))
    return GeneratedData(events=frame, labels=labels, users=users, config=config)
