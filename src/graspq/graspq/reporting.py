"""Figures for people (a rich table) or for programs (exactly one JSON object on stdout)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table


def print_report(report: dict[str, Any], as_json: bool, title: str) -> None:
    """Print ``report``: one JSON object if ``as_json``, else tables (nested dicts other than
    ``per_object`` are left to the JSON form)."""
    if as_json:
        print(json.dumps(report))
        return
    console = Console()
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        if isinstance(value, dict):
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    if "per_object" in report:
        objects = Table(title="per object")
        for column in ("object", "episodes", "success rate"):
            objects.add_column(column, justify="right")
        for kind, row in report["per_object"].items():
            objects.add_row(kind, str(row["episodes"]), f"{row['success_rate']:.1%}")
        console.print(objects)
