"""The data sets of ``benchmarks.detection``, each built into a fresh store through
``core.ingest.ingest_events`` from a pandas DataFrame.

- ``sample``: the built-in generator (users x days, seed), with its ground truth in the store.
- ``markov`` / ``markov300``: sessions of 8-40 events from a sparse Markov chain over 50 / 300
  event types; ~2% of sessions get 2 planted rare transitions.
- ``unseen_types`` (stress a): sessions of 10-40 events from a 12-type e-commerce Markov chain;
  in ~1.5% of the sessions after the 70% time point exactly one event is replaced by an event
  type that never occurs before that point (5 such types).
- ``constant_shift`` (stress b): e-commerce sessions in which several values are constant in
  training (every add_to_cart has quantity 1, every session one purchase of exactly 10.00, one
  device per user, an extra column ``loyalty_level`` = 1); in ~2% of the sessions after the 70%
  time point exactly one of those moves by one unit (quantity 2, amount 11.00, a second device,
  loyalty_level 2 on one event).
- ``adbench``: the ten ADBench "Classical" sets (``/work/shared/data/adbench``): one row = one
  session of one event, the features as extra columns ``f0..f{d-1}``; ADBench's unsupervised
  protocol (stratified 70/30 split, seed 42, labels not in the store). Sets above
  ``ADBENCH_CAP`` rows are first reduced to that many by a stratified sample (seed 42).

The stress sets label every session (ground truth in the store); their anomalies all fall after
the 70% time point, so what is "constant in training" or "never seen in training" holds for
every session a detector trains on, labelled or not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BASE_TS = pd.Timestamp("2026-01-05 00:00:00")  # a Monday
TRAIN_SHARE = 0.7  # core.pipeline.training.DEFAULT_TRAIN_SHARE: the default time split
ADBENCH_DIR = Path(os.environ.get("ANOMALYST_ADBENCH_DIR",
                                  Path(__file__).resolve().parents[2] / "shared/data/adbench"))
ADBENCH_SEED = 42
ADBENCH_TEST_SIZE = 0.3
ADBENCH_CAP = 100_000
"""Sets above this many rows (donors, 619k) are stratified-subsampled to it before the split
(seed 42, the same rows for every method and seed): it bounds the run time on 2 cores."""
ADBENCH_TRAIN_TS = pd.Timestamp("2026-01-05 12:00:00")  # Monday noon
ADBENCH_TEST_TS = pd.Timestamp("2026-01-07 12:00:00")  # Wednesday noon
"""Every training row starts at one instant and every test row at another, two days later, on
weekdays at the same hour: the time-of-day and weekday features are then constant, so time
carries no signal, and the store's default 70% time point falls between the two parts (the
ensemble's reference window and the label-free threshold see exactly the training part)."""

ECOMMERCE_TYPES = ("login", "view", "search", "view_item", "add_to_cart", "remove_from_cart",
                   "wishlist", "checkout", "payment_attempt", "purchase", "review", "logout")
UNSEEN_TYPES = ("chargeback_request", "admin_export", "api_key_create", "gift_card_bulk_redeem",
                "address_book_dump")
SHIFT_KINDS = ("quantity", "amount", "device", "extra")


@dataclass
class BuiltSet:
    """A data set in its store, with what the evaluation needs beside the store.

    ``truth``: session_id, is_anomaly, scenario for every labelled session (kept in memory; in
    the store too when ``labels_in_store``). ``train_ids`` / ``test_ids``: explicit split (None:
    the time split at the store's default train end, test = labelled sessions after it).
    ``raw``: (session ids, feature matrix) in the set's own features, for the peers (adbench).
    """

    name: str
    db: Path
    info: dict[str, Any]
    truth: pd.DataFrame
    labels_in_store: bool = True
    train_ids: list[str] | None = None
    test_ids: list[str] | None = None
    raw: tuple[np.ndarray, np.ndarray] | None = None
    sequence_models: bool = True
    notes: list[str] = field(default_factory=list)


def _ingest(db: Path, events: pd.DataFrame, labels: pd.DataFrame | None) -> int:
    from core.ingest import ingest_events
    from core.ingest.labels import ingest_labels
    from core.store import Store

    with Store.open(db) as store:
        ingest_events(store, events)
        if labels is not None:
            ingest_labels(store, labels)
        return store.summary.count_sessions()


def _time_split(session_start: np.ndarray, event_ts: np.ndarray) -> np.ndarray:
    """Per session: True when it starts at or after the store's default train end."""
    first, last = event_ts.min(), event_ts.max()
    return session_start >= first + (last - first) * TRAIN_SHARE


# ------------------------------------------------------------------------------------ sample
def build_sample_store(db: Path, users: int, days: int, seed: int,
                       scenarios: tuple[str, ...] | None = None,
                       anomaly_rate: float | None = None,
                       labels: bool = True) -> dict[str, Any]:
    """The built-in generator's events and ground truth in the store at ``db`` (also used by
    benchmarks.classifiers and benchmarks.explain); ``scenarios`` and ``anomaly_rate`` as
    ``sample_data.GeneratorConfig`` (its defaults when None); ``labels=False`` leaves the
    ground truth out of the store."""
    import sample_data
    from core.ingest import ingest_events
    from core.ingest.labels import ingest_labels
    from core.store import Store

    extra: dict[str, Any] = {}
    if scenarios:
        extra["scenarios"] = tuple(scenarios)
    if anomaly_rate is not None:
        extra["anomaly_rate"] = anomaly_rate
    data = sample_data.generate(sample_data.GeneratorConfig(users=users, days=days, seed=seed,
                                                            **extra))
    with Store.open(db) as store:
        ingest_events(store, data.events)
        if labels:
            ingest_labels(store, data.labels)
        n_sessions = store.summary.count_sessions()
    return {"name": "sample", "events": len(data.events), "sessions": int(n_sessions),
            "description": f"sample_data users={users} days={days} seed={seed}"
                           + (f" scenarios={','.join(scenarios)}" if scenarios else "")
                           + (f" anomaly_rate={anomaly_rate}" if anomaly_rate is not None
                              else "")}


def build_sample(db: Path, users: int, days: int, seed: int) -> BuiltSet:
    from core.store import Store

    info = build_sample_store(db, users, days, seed)
    with Store.open(db) as store:
        truth = store.labels.session_labels(["ground_truth", "analyst"])
    truth = truth[["session_id", "is_anomaly", "scenario"]].copy()
    info["anomalous_share"] = float(truth["is_anomaly"].astype(bool).mean())
    return BuiltSet("sample", db, info, truth)


def build_sample_unlabelled(db: Path, users: int, days: int, seed: int) -> BuiltSet:
    """The sample data with its ground truth kept out of the store: the detectors train on an
    unlabelled window that holds the generator's anomalies, as on a new customer's data. (The
    truth is read from a labelled twin of the store, then removed.)"""
    twin = db.with_name(db.stem + "-truth.duckdb")
    labelled = build_sample(twin, users, days, seed)
    for path in twin.parent.glob(twin.name + "*"):
        path.unlink(missing_ok=True)
    info = build_sample_store(db, users, days, seed, labels=False)
    info.update(name="sample_unlabelled", anomalous_share=labelled.info["anomalous_share"],
                description=info["description"] + "; labels not in the store")
    return BuiltSet("sample_unlabelled", db, info, labelled.truth, labels_in_store=False)


# ------------------------------------------------------------------------------------ Markov
def markov_chain(n_types: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Transition matrix: each type has 4 likely successors (Dirichlet weights) and shares
    ``noise`` of its probability over all other types; no self-transitions."""
    trans = np.full((n_types, n_types), noise / (n_types - 1))
    for state in range(n_types):
        succ = rng.choice(np.delete(np.arange(n_types), state), 4, replace=False)
        trans[state, succ] += (1 - noise) * rng.dirichlet(np.ones(4))
    trans[np.arange(n_types), np.arange(n_types)] = 0.0
    return trans / trans.sum(axis=1, keepdims=True)


def markov_walk(trans: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(sessions, max length) token walks; positions past a session's length are junk."""
    n_types = trans.shape[0]
    cum = np.cumsum(trans, axis=1)
    n = len(lengths)
    tokens = np.empty((n, int(lengths.max())), dtype=np.int64)
    tokens[:, 0] = rng.integers(0, n_types, n)
    for pos in range(1, tokens.shape[1]):
        u = rng.random(n)[:, None]
        tokens[:, pos] = np.minimum((cum[tokens[:, pos - 1]] < u).sum(axis=1), n_types - 1)
    return tokens


def _sequence_events(tokens: np.ndarray, lengths: np.ndarray, names: np.ndarray, prefix: str,
                     rng: np.random.Generator, users_per_session: int = 5) -> pd.DataFrame:
    """Events of token sessions: session s's events follow each other one second apart, and
    sessions follow each other in index order (so a split by time is a split by index)."""
    n = len(lengths)
    mask = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
    rows, cols = np.nonzero(mask)
    user = rng.integers(0, max(n // users_per_session, 1), n)
    seconds = np.arange(len(rows), dtype=np.int64) + rows * 60  # 1 min between sessions
    return pd.DataFrame({
        "event_id": [f"{prefix}e{i}" for i in range(len(rows))],
        "user_id": [f"{prefix}u{u}" for u in user[rows]],
        "session_id": [f"{prefix}s{s:07d}" for s in rows],
        "ts": BASE_TS + pd.to_timedelta(seconds, unit="s"),
        "event_type": names[tokens[rows, cols]],
    })


def markov_frames(n_sessions: int, *, n_types: int = 50, anomaly_rate: float = 0.02,
                  noise: float = 0.002, n_planted: int = 2, seed: int = 0,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, session labels) of a sparse Markov chain with planted rare transitions.

    An anomalous session gets ``n_planted`` positions whose event type is replaced by one that
    the previous event almost never leads to (rare transitions also occur, seldom, in normal
    sessions). Sessions are 8-40 events.
    """
    rng = np.random.default_rng(seed)
    trans = markov_chain(n_types, noise, rng)
    lengths = rng.integers(8, 41, n_sessions)
    tokens = markov_walk(trans, lengths, rng)
    anomalous = rng.random(n_sessions) < anomaly_rate
    rare = trans < noise  # pairs (a, b) that are not among a's likely successors
    for s in np.flatnonzero(anomalous):
        for pos in rng.choice(np.arange(1, lengths[s]), n_planted, replace=False):
            tokens[s, pos] = rng.choice(np.flatnonzero(rare[tokens[s, pos - 1]]))
    width = len(str(n_types - 1))
    names = np.array([f"type_{t:0{width}d}" for t in range(n_types)])
    events = _sequence_events(tokens, lengths, names, "m", rng)
    labels = pd.DataFrame({
        "session_id": [f"ms{s:07d}" for s in range(n_sessions)],
        "is_anomaly": anomalous,
        "scenario": np.where(anomalous, "rare_transition", "normal"),
    })
    return events, labels


def build_markov(db: Path, n_sessions: int, n_types: int, seed: int) -> BuiltSet:
    events, labels = markov_frames(n_sessions, n_types=n_types, seed=seed)
    return _labelled_set("markov" if n_types == 50 else f"markov{n_types}", db, events, labels,
                         f"Markov chain, {n_types} event types, {n_sessions:,} sessions of "
                         "8-40 events, 2 planted rare transitions in ~2% of sessions")


def _labelled_set(name: str, db: Path, events: pd.DataFrame, labels: pd.DataFrame,
                  description: str) -> BuiltSet:
    """A generated set with its labels in the store."""
    n = _ingest(db, events, labels)
    info = {"name": name, "events": len(events), "sessions": n,
            "anomalous_share": float(labels["is_anomaly"].mean()), "description": description}
    return BuiltSet(name, db, info, labels)


# ------------------------------------------------------------------------ stress: unseen types
def unseen_types_frames(n_sessions: int, *, rate: float = 0.015, seed: int = 0,
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, labels): 10-40-event sessions from a 12-type e-commerce Markov chain (noise
    0.01); in ``rate`` of the test sessions (start at or after the 70% time point) one event at
    a random position becomes one of ``UNSEEN_TYPES``, which occur nowhere else."""
    rng = np.random.default_rng(seed)
    n_types = len(ECOMMERCE_TYPES)
    trans = markov_chain(n_types, 0.01, rng)
    lengths = rng.integers(10, 41, n_sessions)
    tokens = markov_walk(trans, lengths, rng)
    names = np.array([*ECOMMERCE_TYPES, *UNSEEN_TYPES])
    events = _sequence_events(tokens, lengths, names, "n", rng)
    starts = events.groupby("session_id", sort=True)["ts"].min().to_numpy()
    test = _time_split(starts, events["ts"].to_numpy())
    anomalous = test & (rng.random(n_sessions) < rate)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    types = events["event_type"].to_numpy(dtype=object)
    for s in np.flatnonzero(anomalous):
        types[offsets[s] + rng.integers(0, lengths[s])] = rng.choice(UNSEEN_TYPES)
    events["event_type"] = types
    labels = pd.DataFrame({
        "session_id": [f"ns{s:07d}" for s in range(n_sessions)],
        "is_anomaly": anomalous,
        "scenario": np.where(anomalous, "unseen_type", "normal"),
    })
    return events, labels


def build_unseen_types(db: Path, n_sessions: int, seed: int) -> BuiltSet:
    events, labels = unseen_types_frames(n_sessions, seed=seed)
    return _labelled_set("unseen_types", db, events, labels,
                         f"stress (a): {n_sessions:,} sessions of 10-40 events from a 12-type "
                         "e-commerce Markov chain; ~1.5% of test sessions hold exactly one "
                         "event of a type never seen in training")


# ---------------------------------------------------------------------- stress: constant shift
def constant_shift_frames(n_sessions: int, *, rate: float = 0.02, seed: int = 0,
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, labels) of e-commerce sessions in which four values are constant in training.

    Each session (10-40 events, ~30 days, a user keeps one device, IP, country and card):
    login, a random walk over browsing types, 1-3 ``add_to_cart`` with quantity 1, checkout,
    payment_attempt, exactly one ``purchase`` of amount 10.00, logout; every event carries the
    extra column ``loyalty_level`` = 1. In ``rate`` of the test sessions exactly one of these
    moves by one unit (kinds in turn, the label's scenario says which): one add_to_cart
    quantity 2 (``shift_quantity``), the purchase 11.00 (``shift_amount``), one event on a
    second device (``shift_device``), one event with loyalty_level 2 (``shift_extra``).
    """
    rng = np.random.default_rng(seed)
    browse = np.array(["view", "search", "view_item", "wishlist", "review"])
    n_users = max(n_sessions // 4, 1)
    user = rng.integers(0, n_users, n_sessions)
    lengths = rng.integers(10, 41, n_sessions)
    n_add = rng.integers(1, 4, n_sessions)
    span = 30 * 86_400
    starts = np.sort(rng.integers(0, span, n_sessions))
    rows: dict[str, list[Any]] = {k: [] for k in (
        "session", "event_type", "quantity", "amount", "offset")}
    for s in range(n_sessions):
        n_browse = lengths[s] - 5 - n_add[s]  # login, checkout, payment_attempt, purchase, logout
        middle = list(rng.choice(browse, n_browse))
        for _ in range(n_add[s]):
            middle.insert(int(rng.integers(0, len(middle) + 1)), "add_to_cart")
        seq = ["login", *middle, "checkout", "payment_attempt", "purchase", "logout"]
        rows["session"] += [s] * len(seq)
        rows["event_type"] += seq
        rows["quantity"] += [1.0 if t == "add_to_cart" else np.nan for t in seq]
        rows["amount"] += [10.0 if t == "purchase" else np.nan for t in seq]
        rows["offset"] += list(np.cumsum(rng.integers(3, 90, len(seq))))
    sess = np.asarray(rows["session"])
    ts = BASE_TS + pd.to_timedelta(starts[sess] + np.asarray(rows["offset"]), unit="s")
    events = pd.DataFrame({
        "event_id": [f"c{i}" for i in range(len(sess))],
        "user_id": [f"cu{u}" for u in user[sess]],
        "session_id": [f"cs{s:07d}" for s in sess],
        "ts": ts,
        "event_type": rows["event_type"],
        "item_id": [f"item{i}" for i in rng.integers(0, 500, len(sess))],
        "amount": np.asarray(rows["amount"]),
        "quantity": pd.array(np.asarray(rows["quantity"]), dtype="Int64"),
        "device_id": [f"dev{u}" for u in user[sess]],
        "ip": [f"10.0.{u // 250}.{u % 250}" for u in user[sess]],
        "country": "DE",
        "payment_id": [f"card{u}" for u in user[sess]],
        "loyalty_level": np.ones(len(sess), dtype=np.int64),
    })
    session_start = events.groupby("session_id", sort=True)["ts"].min().to_numpy()
    test = _time_split(session_start, events["ts"].to_numpy())
    anomalous = test & (rng.random(n_sessions) < rate)
    scenario = np.full(n_sessions, "normal", dtype=object)
    first_row = np.searchsorted(sess, np.arange(n_sessions))
    for i, s in enumerate(np.flatnonzero(anomalous)):
        kind = SHIFT_KINDS[i % len(SHIFT_KINDS)]
        scenario[s] = f"shift_{kind}"
        idx = np.arange(first_row[s], first_row[s] + lengths[s])
        etype = events["event_type"].to_numpy()[idx]
        if kind == "quantity":
            events.loc[rng.choice(idx[etype == "add_to_cart"]), "quantity"] = 2
        elif kind == "amount":
            events.loc[idx[etype == "purchase"][0], "amount"] = 11.0
        elif kind == "device":
            events.loc[rng.choice(idx[1:]), "device_id"] = f"dev{user[s]}_second"
        else:
            events.loc[rng.choice(idx), "loyalty_level"] = 2
    labels = pd.DataFrame({"session_id": [f"cs{s:07d}" for s in range(n_sessions)],
                           "is_anomaly": anomalous, "scenario": scenario})
    return events, labels


def build_constant_shift(db: Path, n_sessions: int, seed: int) -> BuiltSet:
    events, labels = constant_shift_frames(n_sessions, seed=seed)
    return _labelled_set("constant_shift", db, events, labels,
                         f"stress (b): {n_sessions:,} e-commerce sessions of 10-40 events; "
                         "quantity 1, purchase 10.00, one device per user and extra column "
                         "loyalty_level=1 are constant in training; ~2% of test sessions "
                         "move one of them by one unit")


# ------------------------------------------------------------------------------------ ADBench
def adbench_files(directory: Path = ADBENCH_DIR) -> list[Path]:
    """The .npz files, ordered by ADBench's number (2_annthyroid, 5_campaign, ...)."""
    return sorted(Path(directory).glob("*.npz"), key=lambda p: (int(p.stem.split("_")[0])
                                                                 if p.stem.split("_")[0].isdigit()
                                                                 else 10**9, p.stem))


def adbench_name(path: Path) -> str:
    stem = Path(path).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def load_adbench(path: Path, *, cap: int = ADBENCH_CAP, seed: int = ADBENCH_SEED,
                 ) -> dict[str, Any]:
    """X, y and ADBench's split of one set: ``train_idx`` / ``test_idx`` are row indices into
    X (a stratified 70/30 split, ``seed``), after a stratified subsample to ``cap`` rows when
    the set is larger (the rows left out are in neither part)."""
    from sklearn.model_selection import train_test_split

    with np.load(path, allow_pickle=False) as data:
        x = np.nan_to_num(np.asarray(data["X"], dtype=np.float64))
        y = np.asarray(data["y"]).astype(np.int64).ravel()
    rows = np.arange(len(y))
    if len(y) > cap:
        rows, _ = train_test_split(rows, train_size=cap, stratify=y, random_state=seed)
    train_idx, test_idx = train_test_split(rows, test_size=ADBENCH_TEST_SIZE, stratify=y[rows],
                                           random_state=seed)
    return {"X": x, "y": y, "train_idx": np.asarray(train_idx), "test_idx": np.asarray(test_idx),
            "n_rows": len(y), "n_used": len(rows), "subsampled": len(rows) < len(y)}


def adbench_frames(x: np.ndarray, y: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray,
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, truth): one session of one event per row, training rows first. Ids number the
    rows in the split's (shuffled) order, so a slice by id or time is a random draw; the
    features become extra columns f0..f{d-1}."""
    order = np.concatenate([train_idx, test_idx])
    n_train = len(train_idx)
    ids = [f"r{k:06d}" for k in range(len(order))]
    ts = np.where(np.arange(len(order)) < n_train, ADBENCH_TRAIN_TS, ADBENCH_TEST_TS)
    events = pd.DataFrame({"event_id": [f"e{k:06d}" for k in range(len(order))],
                           "user_id": ids, "session_id": ids,
                           "ts": pd.to_datetime(ts), "event_type": "record"})
    features = pd.DataFrame(x[order], columns=[f"f{j}" for j in range(x.shape[1])])
    events = pd.concat([events, features], axis=1)
    truth = pd.DataFrame({"session_id": ids, "is_anomaly": y[order].astype(bool),
                          "scenario": np.where(y[order] == 1, "anomaly", "normal")})
    return events, truth


def build_adbench(db: Path, path: Path, *, cap: int = ADBENCH_CAP) -> BuiltSet:
    """One ADBench set in the store at ``db``, labels kept out of the store."""
    from sklearn.preprocessing import MinMaxScaler

    data = load_adbench(path, cap=cap)
    events, truth = adbench_frames(data["X"], data["y"], data["train_idx"], data["test_idx"])
    n = _ingest(db, events, None)
    n_train = len(data["train_idx"])
    ids = truth["session_id"].to_numpy()
    # the peers see the set's own features, min-max scaled on the training part as ADBench's
    # data generator does
    x = data["X"][np.concatenate([data["train_idx"], data["test_idx"]])]
    x = MinMaxScaler().fit(x[:n_train]).transform(x)
    name = adbench_name(path)
    info = {"name": name, "file": Path(path).name, "events": len(events), "sessions": n,
            "rows": data["n_rows"], "rows_used": data["n_used"], "features": x.shape[1],
            "n_train": n_train, "n_test": len(data["test_idx"]),
            "anomalous_share": float(data["y"].mean()),
            "description": f"ADBench {Path(path).stem}: {data['n_used']:,} rows"
                           + (f" (stratified sample of {data['n_rows']:,})"
                              if data["subsampled"] else "")
                           + f" x {x.shape[1]} features, stratified 70/30 split seed 42"}
    return BuiltSet(name, db, info, truth, labels_in_store=False,
                    train_ids=list(ids[:n_train]), test_ids=list(ids[n_train:]),
                    raw=(ids, x.astype(np.float32)), sequence_models=False,
                    notes=["one-event sessions of one event type: sequence detectors skipped"])
