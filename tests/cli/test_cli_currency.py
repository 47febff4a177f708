"""`anomalyst currency [CODE] [--clear]`: the display currency of amounts without their own."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_show_set_refuse_and_clear_the_display_currency(demo_store_copy: Path) -> None:
    db = str(demo_store_copy)
    assert run("currency", "--db", db) == (0, "Display currency: EUR\n")  # the demo's prices
    assert run("currency", "usd", "--db", db) == (0, "Display currency: USD\n")
    code, out = run("currency", "dollars", "--db", db)
    assert code == 2 and "three-letter ISO 4217 code" in out and "Traceback" not in out
    assert run("currency", "--db", db) == (0, "Display currency: USD\n")  # unchanged
    assert run("currency", "--clear", "--db", db) == (0, "Display currency: (currency not set)\n")
