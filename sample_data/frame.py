"""From rendered batches to the final tables: ids, noise, row order, strings, labels."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

import sample_data.ids as ids
from core.schema import EVENT_COLUMN_NAMES, NORMAL_SCENARIO
from sample_data.catalogue import CATEGORY_NAMES, Catalogue
from sample_data.config import SCENARIOS, GeneratorConfig
from sample_data.personas import PERSONAS
from sample_data.population import Pools, Population
from sample_data.scenarios import FLAG_TABLE
from sample_data.sessions import Batch, Plan, concat_plans
from sample_data.world import COUNTRY_CODES, ET, EVENT_TYPES, USER_AGENTS

SCENARIO_NAMES = np.array((NORMAL_SCENARIO, *SCENARIOS), dtype=object)
NEW_COLUMNS = ("merchant_id",)
"""Columns the generator writes beyond core.schema's (until the schema names them; the ingest
keeps unknown columns in ``extra``)."""
OUTPUT_COLUMNS: tuple[str, ...] = EVENT_COLUMN_NAMES + tuple(
    c for c in NEW_COLUMNS if c not in EVENT_COLUMN_NAMES)
"""The event table's columns, in order: the canonical schema, then merchant_id if it is not
in it."""
ITEM_MERCHANT_TYPES = np.array([ET["add_to_cart"], ET["remove_from_cart"],
                                ET["refund_request"]])
ORDER_MERCHANT_TYPES = np.array([ET["checkout"], ET["payment_attempt"], ET["payment_failed"],
                                 ET["purchase"]])
"""Events that carry a merchant: cart lines and refunds that of their item; checkout, payment
steps and the purchase that of the order (its first cart line; null without a cart)."""
CATEGORICAL_COLUMNS = ("event_type", "category", "country", "user_agent")
"""String columns with a few fixed values, returned as pandas Categoricals (a string column of
the canonical schema either way: Parquet and DuckDB read them as strings)."""
COLUMN_THREADS = 2
MAX_DELAY_ROWS = 2000
"""Late rows arrive up to this many rows after their place in time order."""


@dataclass
class Events:
    """All events as integer codes, in generation order (session-major)."""

    user: np.ndarray
    session: np.ndarray
    t: np.ndarray
    etype: np.ndarray
    item: np.ndarray
    category: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray
    device: np.ndarray
    ip: np.ndarray
    country: np.ndarray
    ua: np.ndarray
    payment: np.ndarray
    text: np.ndarray
    flag: np.ndarray
    merchant: np.ndarray


def merchants_of(item: np.ndarray, etype: np.ndarray, session: np.ndarray, n_sessions: int,
                 cat: Catalogue) -> np.ndarray:
    """Merchant code per event (-1 = none): see ITEM_MERCHANT_TYPES, ORDER_MERCHANT_TYPES."""
    merchant = np.full(len(item), -1, np.int32)
    if cat.merchant is None:
        return merchant
    kind = np.zeros((2, len(EVENT_TYPES)), dtype=bool)  # lookups: one pass instead of isin's
    kind[0, ITEM_MERCHANT_TYPES] = True
    kind[1, ORDER_MERCHANT_TYPES] = True
    lines = np.flatnonzero(kind[0][etype] & (item >= 0))
    merchant[lines] = cat.merchant[item[lines]]
    adds = np.flatnonzero(etype == ET["add_to_cart"])
    s = session[adds]
    if np.all(s[1:] >= s[:-1]):  # session-major, as combine builds it
        first = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    else:
        _, first = np.unique(s, return_index=True)
    order = np.full(n_sessions, -1, np.int32)
    order[s[first]] = cat.merchant[item[adds[first]]]
    pay = np.flatnonzero(kind[1][etype])
    merchant[pay] = order[session[pay]]
    return merchant


def merchant_table(cat: Catalogue) -> np.ndarray:
    """Fixed-width id bytes of every merchant (``m`` + number)."""
    return ids.id_bytes("m", np.arange(cat.n_merchants), _width(cat.n_merchants))


def combine(parts: list[tuple[Plan, Batch]], pools: Pools,
            catalogue: Catalogue | None = None) -> tuple[Plan, Events]:
    """One plan of all sessions and one event set, with session indices made global."""
    plan = concat_plans([p for p, _ in parts])
    offsets = np.cumsum([0] + [len(p) for p, _ in parts])
    session = np.concatenate([b.session + off for (_, b), off in zip(parts, offsets, strict=False)])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for _, b in parts])

    etype = cat("etype")
    item = cat("item")
    ip = plan.ip[session]
    ip_country = np.concatenate(pools.ip_country)
    device = plan.device[session]
    return plan, Events(
        user=plan.user[session], session=session, t=cat("t"), etype=etype, item=item,
        category=cat("category"), amount=cat("amount"), quantity=cat("quantity"),
        device=device, ip=ip, country=ip_country[ip].astype(np.int16),
        ua=np.concatenate(pools.device_ua)[device], payment=cat("payment"), text=cat("text"),
        flag=FLAG_TABLE[plan.scenario[session], etype],
        merchant=(merchants_of(item, etype, session, len(plan), catalogue)
                  if catalogue is not None else np.full(len(session), -1, np.int32)),
    )


def add_missing(ev: Events, rng: np.random.Generator, rate: float) -> None:
    """Blank optional fields at random, as real trackers drop them (user agents most often)."""
    n = len(ev.t)
    for name, scale in (("device", 1.0), ("ip", 1.0), ("country", 1.0), ("ua", 2.0),
                        ("category", 0.5)):
        rows: np.ndarray = (
            rng.integers(0, n, rng.binomial(n, min(rate * scale, 1.0))) if n
            else np.zeros(0, np.int64)
        )
        getattr(ev, name)[rows] = -1


def arrival_order(n: int, rng: np.random.Generator, config: GeneratorConfig) -> np.ndarray:
    """Row order of the output as positions in time order: mostly sorted, some rows late,
    some delivered twice (the copy a little after the original)."""
    late = np.zeros(n, dtype=bool)
    late[rng.integers(0, n, rng.binomial(n, config.out_of_order_rate)) if n else []] = True
    dup = rng.integers(0, n, rng.binomial(n, config.duplicate_rate)) if n else np.zeros(0, int)
    dup = np.unique(dup)
    stay = np.flatnonzero(~late)
    moved = np.flatnonzero(late)
    before = np.cumsum(late) - late  # late rows ahead of each position
    where_late = moved - before[moved] + rng.integers(1, MAX_DELAY_ROWS, len(moved))
    where_dup = dup - before[dup] + rng.integers(1, 50, len(dup))
    values = np.concatenate([moved, dup])
    at = np.minimum(np.concatenate([where_late, where_dup]), len(stay))
    # Duplicates must follow their original when it is late too: keep insert order stable.
    order = np.argsort(at, kind="stable")
    return np.insert(stay, at[order], values[order])


def build_tables(
    plan: Plan,
    ev: Events,
    pop: Population,
    pools: Pools,
    cat: Catalogue,
    config: GeneratorConfig,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Events (canonical schema), labels (long format) and users (persona of each account)."""
    n_sessions = len(plan)
    time_order = np.argsort(ev.t, kind="stable")
    arrival = arrival_order(len(time_order), rng, config)
    rows = time_order[arrival]

    session_rank = np.empty(n_sessions, dtype=np.int64)
    session_rank[np.argsort(plan.t0, kind="stable")] = np.arange(n_sessions)
    has_events = np.zeros(pop.n, dtype=bool)
    has_events[plan.user] = True
    user_rank = np.full(pop.n, -1, dtype=np.int64)
    user_rank[has_events] = rng.permutation(int(has_events.sum()))
    w_user = _width(pop.n)
    w_session = _width(n_sessions)
    w_event = _width(len(rows))

    user_table = ids.id_bytes("u", np.maximum(user_rank, 0), w_user)
    session_table = ids.id_bytes("s", np.arange(n_sessions), w_session)
    start_us = np.int64(config.start_us)

    def codes(name: str) -> np.ndarray:
        return getattr(ev, name)[rows]

    jobs: dict[str, Callable[[], pa.Array]] = {
        "event_id": lambda: ids.fixed_ids("e", arrival, w_event),
        "user_id": lambda: ids.gather_ids(user_table, codes("user")),
        "session_id": lambda: ids.gather_ids(session_table, session_rank[codes("session")]),
        "ts": lambda: pa.array((start_us + codes("t") * 1000).astype("datetime64[us]")),
        "event_type": lambda: ids.categorical(pa.array(EVENT_TYPES), codes("etype")),
        "item_id": lambda: ids.gather_ids(
            ids.id_bytes("i", np.arange(cat.n_items), _width(cat.n_items)), codes("item")),
        "category": lambda: ids.categorical(pa.array(CATEGORY_NAMES.tolist()),
                                                 codes("category")),
        "amount": lambda: pa.array(codes("amount"), from_pandas=True),
        "quantity": lambda: _quantity(codes("quantity")),
        "device_id": lambda: ids.gather_ids(
            ids.id_bytes("d", ids.scramble(np.arange(pools.n_devices)), 10), codes("device")),
        "ip": lambda: ids.decode(ids.ip_strings(np.concatenate(pools.ip_value)), codes("ip")),
        "country": lambda: ids.categorical(pa.array(COUNTRY_CODES.tolist()), codes("country")),
        "user_agent": lambda: ids.categorical(pa.array(USER_AGENTS), codes("ua")),
        "payment_id": lambda: ids.gather_ids(
            ids.id_bytes("pm", ids.scramble(np.arange(pools.n_payments)), 10), codes("payment")),
        "text": lambda: ids.decode(pa.concat_arrays(pools.texts), codes("text")),
        "merchant_id": lambda: ids.gather_ids(merchant_table(cat), codes("merchant")),
    }
    user_ids = ids.string_array(user_table)
    session_ids = ids.string_array(session_table)
    # Two jobs at a time: numpy and Arrow release the GIL, and on 2 cores this made generating
    # 10M events faster (benchmarks.generate; docs/BENCHMARKS.md, 'Measurements behind design
    # choices'). Each job is a pure function of its inputs, so the result does not depend on
    # the threads' timing.
    with ThreadPoolExecutor(max_workers=COLUMN_THREADS) as pool:
        labels_job = pool.submit(_labels, plan, ev, time_order, w_event, session_ids, user_ids,
                                 session_rank, user_rank, has_events)
        futures = [pool.submit(jobs[name]) for name in OUTPUT_COLUMNS]
        arrays = [future.result() for future in futures]
        labels = labels_job.result()
    table = pa.table(arrays, names=list(OUTPUT_COLUMNS))
    events = table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)
    users = _users(pop, user_ids, user_rank, has_events, plan)
    return events, labels, users


def _labels(
    plan: Plan,
    ev: Events,
    time_order: np.ndarray,
    w_event: int,
    session_ids: pa.Array,
    user_ids: pa.Array,
    session_rank: np.ndarray,
    user_rank: np.ndarray,
    has_events: np.ndarray,
) -> pd.DataFrame:
    # Events: those of anomalous sessions, in time order (event number order).
    in_anomalous = plan.scenario[ev.session[time_order]] > 0
    ev_pos = np.flatnonzero(in_anomalous)
    ev_rows = time_order[ev_pos]
    ev_flag = ev.flag[ev_rows]
    ev_scen = np.where(ev_flag, plan.scenario[ev.session[ev_rows]], 0)
    # Sessions in id order.
    s_order = np.argsort(session_rank)
    s_scen = plan.scenario[s_order]
    s_ids = session_ids  # the id table is in rank (= id) order
    # Users: the scenario of their first anomalous session; users without events get no label.
    u_scen = np.zeros(len(has_events), dtype=np.int8)
    anomalous = np.flatnonzero(plan.scenario > 0)[::-1]
    u_scen[plan.user[anomalous]] = plan.scenario[anomalous]
    u_order = np.flatnonzero(has_events)[np.argsort(user_rank[has_events])]
    u_scen = u_scen[u_order]

    level = np.repeat(np.array(["event", "session", "user"], dtype=object),
                      [len(ev_pos), len(s_order), len(u_order)])
    entity = pa.chunked_array([
        ids.fixed_ids("e", ev_pos, w_event),
        s_ids,
        user_ids.take(pa.array(u_order)),
    ])
    scen = np.concatenate([ev_scen, s_scen, u_scen])
    table = pa.table({
        "level": pa.array(level, type=pa.string()),
        "entity_id": entity,
        "is_anomaly": pa.array(scen > 0),
        "scenario": pa.array(SCENARIO_NAMES[scen], type=pa.string()),
    })
    return table.to_pandas()


def _users(pop: Population, user_ids: pa.Array, user_rank: np.ndarray, has_events: np.ndarray,
           plan: Plan) -> pd.DataFrame:
    order = np.flatnonzero(has_events)[np.argsort(user_rank[has_events])]
    names = np.array((*PERSONAS, "fraud_account"), dtype=object)
    return pd.DataFrame({
        "user_id": user_ids.take(pa.array(order)).to_pandas(),
        "persona": names[pop.persona[order]],
        "home_country": COUNTRY_CODES[pop.country[order]],
        "n_sessions": np.bincount(plan.user, minlength=pop.n)[order],
    }).astype({"persona": "str", "home_country": "str"})


def _quantity(values: np.ndarray) -> pa.Array:
    return pa.array(values, mask=values < 0, type=pa.int32())


def _width(n: int) -> int:
    """Digits for ids 0..n-1 (at least 6, so small sets still look like ids)."""
    return max(6, len(str(max(n - 1, 0))))
