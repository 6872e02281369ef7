"""Result reports: a Markdown summary laid out like the VST README's results table, and a PNG bar chart.

Input: the contract dicts `vst eval score` prints ({benchmark, protocol, overall, categories, n, n_unparsed}, percent),
each with a "model" key added. The summary table has one row per model and one column per (benchmark, protocol) with
the protocol in the header, since numbers of different protocols are not comparable (benchmarks.md §0.1). Then one
per-category table per column. Rows, columns and categories keep the order in which they first appear.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from vst.scene.types import atomic_write_bytes, atomic_write_text

RESULT_FIELDS = ("model", "benchmark", "protocol", "overall", "categories", "n", "n_unparsed")
MISSING = "-"


def column_name(result: dict) -> str:
    return f"{result['benchmark']} ({result['protocol']})"


def _check(results: list[dict]) -> None:
    if not results:
        raise ValueError("no results to report")
    seen = set()
    for index, result in enumerate(results):
        missing = [name for name in RESULT_FIELDS if name not in result]
        if missing:
            raise ValueError(f"results[{index}]: missing field(s) {', '.join(missing)}")
        key = (result["model"], column_name(result))
        if key in seen:
            raise ValueError(f"results[{index}]: model {key[0]!r} has two results for {key[1]}")
        seen.add(key)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(name) for name in header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    return lines + ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]


def render_markdown(results: list[dict], title: str = "Spatial benchmark results", decimals: int = 1) -> str:
    """The Markdown report (module docstring); scores in percent with `decimals` places, `-` where a model lacks one."""
    _check(results)
    number = f"{{:.{decimals}f}}".format
    models = list(dict.fromkeys(result["model"] for result in results))
    columns = list(dict.fromkeys(column_name(result) for result in results))
    by_key = {(result["model"], column_name(result)): result for result in results}

    rows = [[model] + [number(by_key[model, column]["overall"]) if (model, column) in by_key else MISSING
                       for column in columns] for model in models]
    lines = [f"# {title}", "", "Overall scores (%); each column names its benchmark and scoring protocol.", ""]
    lines += _table(["Model", *columns], rows)
    for column in columns:
        column_results = [by_key[model, column] for model in models if (model, column) in by_key]
        categories = list(dict.fromkeys(name for result in column_results for name in result["categories"]))
        rows = [[result["model"], number(result["overall"]),
                 *(number(result["categories"][name]) if name in result["categories"] else MISSING
                   for name in categories),
                 str(result["n"]), str(result["n_unparsed"])] for result in column_results]
        lines += ["", f"## {column}", ""]
        lines += _table(["Model", "Overall", *categories, "n", "unparsed"], rows)
        settings = [f"{result['model']}: {_settings(result['run'])}" for result in column_results if result.get("run")]
        if settings:
            lines += ["", "Generation: " + "; ".join(settings) + "."]
    return "\n".join(lines) + "\n"


def _settings(run: dict) -> str:
    """`max_new_tokens 1024, temperature 0.2, top_p 0.95` from a scores.json "run" block."""
    generation = run.get("generation") or {}
    return ", ".join(f"{key} {value}" for key, value in generation.items()) or "backend defaults"


def render_chart(results: list[dict], title: str = "Spatial benchmark results") -> bytes:
    """PNG bytes of grouped bars: one group per (benchmark, protocol) column, one bar per model (overall, percent)."""
    _check(results)
    models = list(dict.fromkeys(result["model"] for result in results))
    columns = list(dict.fromkeys(column_name(result) for result in results))
    by_key = {(result["model"], column_name(result)): result["overall"] for result in results}
    width = 0.8 / len(models)
    figure = Figure(figsize=(max(6.0, 1.2 + 1.1 * len(columns) * max(1, len(models) / 2)), 4.5), layout="constrained")
    axes = figure.add_subplot()
    for offset, model in enumerate(models):
        positions = [index + (offset - (len(models) - 1) / 2) * width for index, column in enumerate(columns)
                     if (model, column) in by_key]
        values = [by_key[model, column] for column in columns if (model, column) in by_key]
        bars = axes.bar(positions, values, width, label=model)
        axes.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    crowded = len(columns) > 4
    axes.set_xticks(range(len(columns)), columns, rotation=20 if crowded else 0, ha="right" if crowded else "center")
    axes.set_ylim(0, 105)
    axes.set_ylabel("overall (%)")
    axes.set_title(title)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def render_report(
    results: list[dict], out_markdown: str | Path, out_png: str | Path, title: str = "Spatial benchmark results"
) -> str:
    """Write the Markdown report and the PNG chart (each written whole or not at all); returns the Markdown."""
    markdown = render_markdown(results, title)
    chart = render_chart(results, title)
    atomic_write_text(Path(out_markdown), markdown)
    atomic_write_bytes(Path(out_png), chart)
    return markdown
