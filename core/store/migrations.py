"""The store's schema, as an ordered list of forward migrations.

A store records the version it is at in ``schema_meta``; opening it for writing applies every
later migration in one transaction. Migrations are append-only: never edit a released one,
add a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import EVENT_COLUMNS, LABEL_SOURCES
from core.store.label_rollup import CREATE_TABLE as _ROLLUP_TABLE
from core.store.label_rollup import ROLLUP_SELECT as _ROLLUP_SELECT

# Version 1's events table: the canonical columns of its day. Later columns arrive by ALTER
# TABLE in their own migration (merchant_id: 12), so every store ends with the same columns.
_ADDED_LATER = ("merchant_id",)
_EVENT_COLUMNS_DDL = ",\n    ".join(
    f"{c.name} {c.sql_type}" for c in EVENT_COLUMNS if c.name not in _ADDED_LATER)


@dataclass(frozen=True)
class Migration:
    """One step forward: the version it produces and the statements that get there."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, sessions, labels and the ingest log",
        (
            """CREATE TABLE IF NOT EXISTS schema_meta (
                key VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL
            )""",
            """CREATE SEQUENCE IF NOT EXISTS ingest_id_seq START 1""",
            """CREATE TABLE IF NOT EXISTS ingests (
                ingest_id BIGINT PRIMARY KEY,
                kind VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                started_at TIMESTAMP NOT NULL,
                n_rows BIGINT NOT NULL,
                n_added BIGINT NOT NULL,
                n_duplicates BIGINT NOT NULL,
                n_rejected BIGINT NOT NULL,
                note VARCHAR
            )""",
            f"""CREATE TABLE IF NOT EXISTS events (
    {_EVENT_COLUMNS_DDL},
    extra VARCHAR,
    ingest_id BIGINT
            )""",
            """CREATE TABLE IF NOT EXISTS sessions (
                session_id VARCHAR PRIMARY KEY,
                user_id VARCHAR NOT NULL,
                start_ts TIMESTAMP NOT NULL,
                end_ts TIMESTAMP NOT NULL,
                n_events BIGINT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS labels (
                level VARCHAR NOT NULL,
                entity_id VARCHAR NOT NULL,
                is_anomaly BOOLEAN NOT NULL,
                scenario VARCHAR,
                source VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                note VARCHAR,
                ingest_id BIGINT,
                PRIMARY KEY (level, entity_id, source)
            )""",
        ),
    ),
    Migration(
        2,
        "models and their scores",
        (
            """CREATE TABLE IF NOT EXISTS models (
                model_id VARCHAR PRIMARY KEY,
                detector VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                config VARCHAR NOT NULL,
                feature_hash VARCHAR,
                feature_spec VARCHAR,
                train_start TIMESTAMP,
                train_end TIMESTAMP,
                n_train BIGINT,
                metrics VARCHAR,
                path VARCHAR NOT NULL,
                device VARCHAR
            )""",
            """CREATE TABLE IF NOT EXISTS scores (
                model_id VARCHAR NOT NULL,
                session_id VARCHAR NOT NULL,
                score DOUBLE NOT NULL,
                scored_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS event_scores (
                model_id VARCHAR NOT NULL,
                session_id VARCHAR NOT NULL,
                event_id VARCHAR NOT NULL,
                position INTEGER NOT NULL,
                score DOUBLE NOT NULL
            )""",
        ),
    ),
    Migration(
        3,
        "operating thresholds per model and segment",
        (
            """CREATE TABLE IF NOT EXISTS thresholds (
                model_id VARCHAR NOT NULL,
                segment VARCHAR NOT NULL,
                threshold DOUBLE NOT NULL,
                set_by VARCHAR,
                set_at TIMESTAMP NOT NULL,
                PRIMARY KEY (model_id, segment)
            )""",
        ),
    ),
    Migration(
        4,
        "a country per session (the first by name among its events), for segments",
        (
            "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS country VARCHAR",
            """UPDATE sessions SET country = c.country
               FROM (SELECT session_id, min(country) AS country FROM events
                     GROUP BY session_id) c
               WHERE sessions.session_id = c.session_id""",
        ),
    ),
    Migration(
        5,
        "cases, the sessions they cover, notes, the append-only audit log and suppressions",
        (
            """CREATE TABLE IF NOT EXISTS cases (
                case_id VARCHAR PRIMARY KEY,
                user_id VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                assignee VARCHAR,
                decision VARCHAR,
                scenario VARCHAR,
                title VARCHAR,
                created_by VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                decided_by VARCHAR,
                decided_at TIMESTAMP,
                snapshot VARCHAR
            )""",
            """CREATE TABLE IF NOT EXISTS case_sessions (
                case_id VARCHAR NOT NULL,
                session_id VARCHAR NOT NULL,
                PRIMARY KEY (case_id, session_id)
            )""",
            """CREATE SEQUENCE IF NOT EXISTS case_note_id_seq START 1""",
            """CREATE TABLE IF NOT EXISTS case_notes (
                note_id BIGINT PRIMARY KEY,
                case_id VARCHAR NOT NULL,
                author VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                text VARCHAR NOT NULL
            )""",
            """CREATE SEQUENCE IF NOT EXISTS audit_id_seq START 1""",
            """CREATE TABLE IF NOT EXISTS audit_log (
                audit_id BIGINT PRIMARY KEY,
                logged_at TIMESTAMP NOT NULL,
                actor VARCHAR NOT NULL,
                action VARCHAR NOT NULL,
                case_id VARCHAR,
                entity VARCHAR,
                detail VARCHAR
            )""",
            """CREATE SEQUENCE IF NOT EXISTS suppression_id_seq START 1""",
            """CREATE TABLE IF NOT EXISTS suppressions (
                suppression_id BIGINT PRIMARY KEY,
                kind VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                created_by VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                expires_at TIMESTAMP NOT NULL,
                lifted_by VARCHAR,
                lifted_at TIMESTAMP
            )""",
        ),
    ),
    Migration(
        6,
        "explanations cached per (model, session, method)",
        (
            """CREATE TABLE IF NOT EXISTS explanations (
                model_id VARCHAR NOT NULL,
                session_id VARCHAR NOT NULL,
                method VARCHAR NOT NULL,
                computed_at TIMESTAMP NOT NULL,
                payload VARCHAR NOT NULL,
                PRIMARY KEY (model_id, session_id, method)
            )""",
        ),
    ),
    Migration(
        7,
        "text embeddings cache and ensemble member contributions",
        (
            """CREATE TABLE IF NOT EXISTS text_embeddings (
                encoder VARCHAR NOT NULL,
                text_hash VARCHAR NOT NULL,
                embedding FLOAT[] NOT NULL,
                PRIMARY KEY (encoder, text_hash)
            )""",
            """CREATE TABLE IF NOT EXISTS score_contributions (
                model_id VARCHAR NOT NULL,
                session_id VARCHAR NOT NULL,
                member_id VARCHAR NOT NULL,
                contribution DOUBLE NOT NULL
            )""",
        ),
    ),
    Migration(
        8,
        "user_entities: each user's distinct devices, IPs and payment methods (linked accounts)",
        (
            """CREATE TABLE IF NOT EXISTS user_entities (
                kind VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                user_id VARCHAR NOT NULL
            )""",
            """INSERT INTO user_entities
            SELECT DISTINCT kind, value, user_id FROM (
                SELECT 'device' AS kind, device_id AS value, user_id FROM events
                WHERE device_id IS NOT NULL
                UNION ALL
                SELECT 'ip', ip, user_id FROM events WHERE ip IS NOT NULL
                UNION ALL
                SELECT 'payment', payment_id, user_id FROM events WHERE payment_id IS NOT NULL
            )""",
        ),
    ),
    Migration(
        9,
        "session_label_rollup: one label per (session, source), kept by every label write",
        (
            _ROLLUP_TABLE,
            "DELETE FROM session_label_rollup",
            "INSERT INTO session_label_rollup "
            + _ROLLUP_SELECT.format(sources=repr(list(LABEL_SOURCES))),
        ),
    ),
    Migration(
        10,
        "models: folder path relative to the store, its original location and a checksum",
        (
            # ``path`` is now relative to the store's folder; older rows keep their absolute
            # path, which also becomes their ``origin_path`` (core.pipeline.model_folders).
            "ALTER TABLE models ADD COLUMN IF NOT EXISTS origin_path VARCHAR",
            "ALTER TABLE models ADD COLUMN IF NOT EXISTS digest VARCHAR",
            "UPDATE models SET origin_path = path WHERE origin_path IS NULL",
        ),
    ),
    Migration(
        11,
        "the alert policy's published versions, and analysts' saved queue views",
        (
            """CREATE TABLE IF NOT EXISTS policies (
                version INTEGER PRIMARY KEY,
                model_id VARCHAR NOT NULL,
                detector VARCHAR,
                thresholds VARCHAR NOT NULL,
                daily_budget INTEGER,
                published_by VARCHAR NOT NULL,
                published_at TIMESTAMP NOT NULL,
                note VARCHAR NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS saved_views (
                analyst VARCHAR NOT NULL,
                page VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                params VARCHAR NOT NULL,
                saved_at TIMESTAMP NOT NULL,
                PRIMARY KEY (analyst, page, name)
            )""",
        ),
    ),
    Migration(
        12,
        "events.merchant_id: the merchant, shop or terminal of an event (optional)",
        (
            "ALTER TABLE events ADD COLUMN IF NOT EXISTS merchant_id VARCHAR",
        ),
    ),
    Migration(
        13,
        "cases opened on an entity (a device, IP, item, payment id, country or merchant)",
        (
            # Idempotent, and independent of migration 12: applying works with it or without.
            "ALTER TABLE cases ADD COLUMN IF NOT EXISTS entity_kind VARCHAR",
            "ALTER TABLE cases ADD COLUMN IF NOT EXISTS entity_value VARCHAR",
        ),
    ),
    Migration(
        14,
        "live_alerts: sessions the real-time scoring service flagged (issue #26)",
        (
            "CREATE SEQUENCE IF NOT EXISTS live_alert_id_seq START 1",
            """CREATE TABLE IF NOT EXISTS live_alerts (
                alert_id BIGINT PRIMARY KEY,
                session_id VARCHAR NOT NULL,
                user_id VARCHAR NOT NULL,
                model_id VARCHAR NOT NULL,
                score DOUBLE NOT NULL,
                risk DOUBLE,
                raised_at TIMESTAMP NOT NULL,
                event_ts TIMESTAMP NOT NULL,
                reasons VARCHAR NOT NULL
            )""",
        ),
    ),
)

CURRENT_VERSION: int = MIGRATIONS[-1].version
