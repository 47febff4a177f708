"""Data: upload events or labels (CSV/Parquet), map the columns, ingest — the CLI's checks."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, services, services_data, state
from dashboard import safe_text as safe

st.title("Data")
st.caption("Bring your own events or labels. The same validation as `anomalyst ingest`: a file "
           "with bad rows is refused whole (or its good rows kept, with the bad ones listed), "
           "and nothing half-lands.")

if not auth.allowed("ingest"):
    st.info(":material/lock: Only an admin can add data. Ask one, or use "
            "`anomalyst ingest FILE` on the server.")
    st.stop()

kind = st.segmented_control("What are you adding?", ["events", "labels"], default="events",
                            key="data_kind")
upload = st.file_uploader(safe.fmt("CSV or Parquet, at most {mb} MB",
                                   mb=services_data.MAX_UPLOAD_MB),
                          type=[s.lstrip(".") for s in services_data.ALLOWED_SUFFIXES],
                          key="data_upload")
if upload is None:
    st.stop()

staged_key = (upload.file_id, upload.name)
if state.get(state.DATA_STAGED_KEY) != staged_key:
    seen = services.safely(lambda: services_data.preview(upload.name, upload.getvalue()),
                           "read the upload")
    if seen is None:
        st.stop()
    state.put(state.DATA_PREVIEW, seen)
    state.put(state.DATA_STAGED_KEY, staged_key)
seen = state.get(state.DATA_PREVIEW)
head = seen.head
st.write(safe.fmt("{name} — {mb:,.1f} MB, columns: {cols}", name=seen.name, mb=seen.size_mb,
                  cols=", ".join(map(str, head.columns))))
st.dataframe(head, hide_index=True, height=220)

if kind == "labels":
    st.caption("Labels need `entity_id` (or `session_id` / `event_id` / `user_id`) and "
               "`is_anomaly`; `scenario` is optional.")
    if st.button("Add labels", type="primary", key="data_ingest_labels"):
        report = services.safely(
            lambda: services_data.ingest_label_upload(upload.name, upload.getvalue()),
            "add the labels")
        if report is not None:
            st.success(safe.message(report.summary()))
    st.stop()

guess = services_data.suggest_mapping(list(head.columns))
by_event = st.toggle("Score each event on its own (payments: one row is one payment)",
                     key="data_by_event",
                     help="Each event becomes its own session, so scores, the queue and cases "
                          "are per payment; a file with no user column is accepted, each row "
                          "its own user. A store keeps the unit of its first ingest.")
sequence_like = services_data.sequence_like_columns(head)
sequence_choices = ["", *sequence_like, *(c for c in head.columns if c not in sequence_like)]
sequence_column = st.selectbox(
    "Sequence column (log traces: one row is one session, its events listed in order)",
    sequence_choices, index=1 if sequence_like else 0, key="data_sequence_column",
    format_func=lambda c: c or "(none: one row is one event)", disabled=by_event,
    help="A column such as [E5,E22,E11]: each row becomes one session of those events, in "
         "that order. Event types come from it and times are made up (the file holds the "
         "order only), so ts and event_type need no mapping.")
sequence_column = "" if by_event else sequence_column
required = services_data.required_columns(by_event=by_event,
                                          by_sequence=bool(sequence_column))
st.subheader("Map your columns")
if sequence_column:
    st.caption("Nothing is required: event types come from the sequence column and times are "
               "made up from its order. Map a session column (and a user column) if the file "
               "has one; otherwise each row is numbered and is its own user.")
elif not required:
    st.caption("Nothing is required by event: a row with no user column is its own user, and "
               "with no time column the rows' order stands for time. Columns already named "
               "like a canonical column (or a common alias) are picked for you.")
else:
    st.caption(safe.fmt("Required: {cols}. Columns already named like a canonical column (or "
                        "a common alias) are picked for you. Without an event_type column "
                        "every row is an 'event'.", cols=", ".join(required)))
mapping: dict[str, str] = {}
choices = ["", *head.columns]
cols = st.columns(4)
for i, canonical in enumerate(services_data.EVENT_COLUMN_NAMES):
    default = guess.get(canonical, "")
    if sequence_column and (canonical in ("ts", "event_type") or default == sequence_column):
        default = ""
    with cols[i % 4]:
        picked = st.selectbox(safe.fmt("{c}", c=canonical)
                              + (" \\*" if canonical in required else ""),
                              choices, index=choices.index(default), key=f"data_map_{canonical}",
                              format_func=lambda c: c or "(none)",
                              disabled=bool(sequence_column)
                              and canonical in ("ts", "event_type"))
    if picked and not (sequence_column and canonical in ("ts", "event_type")):
        mapping[canonical] = picked
missing = [c for c in required if c not in mapping]
label_like = services_data.label_like_columns(list(head.columns))
label_choices = ["", *(c for c in head.columns
                       if c not in mapping.values() and c != sequence_column)]
labels_column = st.selectbox(
    "Labels column (each row's ground truth, never a feature)", label_choices,
    index=label_choices.index(label_like[0]) if label_like and label_like[0] in label_choices
    else 0, key="data_labels_column", format_func=lambda c: c or "(none)",
    help="A column such as Class or isFraud: stored as the rows' ground-truth labels while "
         "the events are ingested, and kept out of the features.")
gap = st.number_input("Session gap (minutes), used when there is no session_id", 1, 24 * 60,
                      30, key="data_gap", disabled=by_event)
skip = st.checkbox("Keep the good rows and list the bad ones (instead of refusing the file)",
                   key="data_skip")
if missing:
    st.warning(safe.fmt("Map the required column(s) {cols} to continue.",
                        cols=", ".join(missing)))
if st.button("Ingest", type="primary", disabled=bool(missing), key="data_ingest"):
    with st.spinner("Validating and ingesting..."):
        done = services.safely(
            lambda: services_data.ingest_upload(upload.name, upload.getvalue(), mapping,
                                                gap_minutes=float(gap), skip_bad_rows=skip,
                                                unit="event" if by_event else "session",
                                                labels_column=labels_column or None,
                                                sequence_column=sequence_column or None),
            "ingest the file")
    if done is not None:
        report, rejected = done
        st.success(safe.message(report.summary()))
        for i, content in enumerate(rejected):
            st.download_button("Download the rejected rows with reasons", content,
                               file_name="rejected_rows.csv", key=f"dl_rejected_{i}")
        state.put(state.DATA_UNSCORED, True)
if state.get(state.DATA_UNSCORED):
    st.info("New sessions are not scored yet; score them with every detector's latest model "
            "(or from the command line: `anomalyst score --only-new`).")
    if st.button("Score new sessions", key="data_score_new"):
        with st.spinner("Scoring new sessions..."):
            lines = services.safely(services_data.score_new_sessions, "score new sessions")
        if lines is not None:
            state.pop(state.DATA_UNSCORED)
            st.success(safe.message("; ".join(lines)) if lines
                       else "No models yet: train one first.")
