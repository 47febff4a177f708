"""Lint: no value reaches a markdown-rendering Streamlit call unless ``dashboard.safe_text``
made it literal (issue #20, item 2: user ids, session ids and URL parameters drawn as markdown
drew live links and fetched images).

A call's text (first argument, ``body``/``label``, and ``help``) must be a string literal, a
call to ``safe_text``'s ``fmt``/``value``/``message``/``join``, or a conditional / ``+`` of
those. f-strings, names, ``.format`` and ``%`` are refused: they cannot show where a value
comes from.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"

# Calls whose text Streamlit renders as markdown (elements, containers, widget labels).
BODY_CALLS = {
    "markdown", "caption", "warning", "error", "info", "success", "write", "title", "header",
    "subheader", "toast", "expander", "popover", "spinner", "status", "metric", "tabs",
    "button", "download_button", "link_button", "form_submit_button", "page_link", "checkbox",
    "toggle", "radio", "selectbox", "multiselect", "select_slider", "slider", "text_input",
    "text_area", "number_input", "date_input", "time_input", "file_uploader",
    "segmented_control", "pills", "color_picker", "chat_input", "feedback",
}
TEXT_KEYWORDS = {"body", "label", "help"}
SAFE_FUNCS = {"fmt", "value", "message", "join", "prose"}
SAFE_MODULES = {"safe_text", "safe"}
NOT_STREAMLIT = {"log", "logger", "logging", "LOG", "parser", "handle", "warnings"}


def _is_safe(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | int | float) or node.value is None
    if isinstance(node, ast.JoinedStr):  # an f-string with no fields is a literal
        return all(isinstance(v, ast.Constant) for v in node.values)
    if isinstance(node, ast.IfExp):
        return _is_safe(node.body) and _is_safe(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_safe(node.left) and _is_safe(node.right)
    if isinstance(node, ast.List | ast.Tuple):  # st.tabs([...])
        return all(_is_safe(e) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        return (node.func.attr in SAFE_FUNCS and isinstance(owner, ast.Name)
                and owner.id in SAFE_MODULES)
    return False


def _receiver(func: ast.Attribute) -> str:
    node = func.value
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else ""


def violations(source: str, filename: str = "<src>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in BODY_CALLS or _receiver(node.func) in NOT_STREAMLIT:
            continue
        texts = [node.args[0]] if node.args else []
        if node.func.attr == "metric" and len(node.args) > 1:
            pass  # the value is drawn as plain text
        texts += [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
        for text in texts:
            if not _is_safe(text):
                found.append(f"{filename}:{text.lineno}: .{node.func.attr}("
                             f"{ast.unparse(text)[:60]}...)")
    return found


def dashboard_files() -> list[Path]:
    return sorted(p for p in DASHBOARD.rglob("*.py") if p.name != "safe_text.py")


def test_no_unescaped_value_reaches_markdown() -> None:
    found = [v for path in dashboard_files()
             for v in violations(path.read_text(encoding="utf-8"),
                                 str(path.relative_to(ROOT)))]
    assert not found, ("Draw values with dashboard.safe_text (fmt/value/message):\n"
                       + "\n".join(found))


@pytest.mark.parametrize("code", [
    'st.markdown(f"user {user_id}")',
    "st.caption(text)",
    'st.warning("No user {}".format(x))',
    'st.error("x %s" % x)',
    'cols[0].metric(f"{name}", 1)',
    'st.button("ok", help=f"{x}")',
    'st.expander(label=name)',
    'st.tabs(["a", name])',
    'st.sidebar.caption("a" + name)',
    'st.title(safe_text.fmt(f"{x}"))' if False else 'st.title(other.fmt("{x}", x=x))',
])
def test_the_lint_catches(code: str) -> None:
    assert violations(code), code


@pytest.mark.parametrize("code", [
    'st.markdown("**Notes**")',
    'st.caption(safe_text.fmt("user {u}", u=user_id))',
    'st.error(safe.message(exc))',
    'st.button("a" if x else "b", key="k")',
    'cols[0].metric("Sessions", f"{n:,}")',
    'log.warning("x %s", x)',
    'st.text(f"{note.author}: {note.text}")',
])
def test_the_lint_allows(code: str) -> None:
    assert not violations(code), code
