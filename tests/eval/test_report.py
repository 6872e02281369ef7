"""Markdown and PNG reports (vst.eval.report) from contract result dicts."""

import pytest
from PIL import Image

from vst.eval.report import render_markdown, render_report


def result(model, benchmark, protocol, overall, categories, n=10, n_unparsed=0):
    return {"model": model, "benchmark": benchmark, "protocol": protocol, "overall": overall,
            "categories": categories, "n": n, "n_unparsed": n_unparsed}


# VST README numbers (benchmarks.md §9) for two models; the 3B model has no VSI-Bench result.
RESULTS = [
    result("VST-7B-RL", "cvbench", "vst", 86.5, {"2D": 80.25, "3D": 92.75}, n=2638, n_unparsed=1),
    result("VST-7B-RL", "vsibench", "vst", 61.2, {"object_counting": 71.6, "room_size_estimation": 69.2}, n=5130),
    result("VST-3B-SFT", "cvbench", "vst", 84.4, {"3D": 88.0, "2D": 80.8}, n=2638),
    result("VST-7B-RL", "cvbench", "official", 86.46, {"2D": 80.2}, n=2638),
]


def table_rows(markdown, heading):
    """The rows of the table under `heading` (None: the first table), each as a list of stripped cells."""
    lines = markdown.splitlines()
    start = 0 if heading is None else lines.index(heading)
    rows = []
    for line in lines[start:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows[0], rows[2:]  # header, body (the alignment row dropped)


def test_summary_table_models_by_benchmarks():
    markdown = render_markdown(RESULTS)
    header, body = table_rows(markdown, None)
    assert header == ["Model", "cvbench (vst)", "vsibench (vst)", "cvbench (official)"]  # protocol in every column
    assert body == [
        ["VST-7B-RL", "86.5", "61.2", "86.5"],  # 86.46 shown with one decimal
        ["VST-3B-SFT", "84.4", "-", "-"],  # no result: "-"
    ]
    assert markdown.startswith("# Spatial benchmark results\n")


def test_category_tables_per_benchmark_and_protocol():
    markdown = render_markdown(RESULTS)
    header, body = table_rows(markdown, "## cvbench (vst)")
    # categories in first-seen order (2D, 3D) even though the 3B result lists 3D first
    assert header == ["Model", "Overall", "2D", "3D", "n", "unparsed"]
    # 80.25 and 92.75 are exact in binary: rounded half to even
    assert body == [
        ["VST-7B-RL", "86.5", "80.2", "92.8", "2638", "1"],
        ["VST-3B-SFT", "84.4", "80.8", "88.0", "2638", "0"],
    ]
    header, body = table_rows(markdown, "## vsibench (vst)")
    assert header == ["Model", "Overall", "object_counting", "room_size_estimation", "n", "unparsed"]
    assert body == [["VST-7B-RL", "61.2", "71.6", "69.2", "5130", "0"]]
    header, body = table_rows(markdown, "## cvbench (official)")
    assert body == [["VST-7B-RL", "86.5", "80.2", "2638", "0"]]


def test_render_report_writes_markdown_and_png(tmp_path):
    markdown_path, png_path = tmp_path / "report.md", tmp_path / "report.png"
    markdown = render_report(RESULTS, markdown_path, png_path)
    assert markdown_path.read_text() == markdown
    with Image.open(png_path) as chart:
        assert chart.format == "PNG" and chart.width > 300 and chart.height > 200
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.md", "report.png"]  # no temp files left


def test_bad_results_are_refused():
    with pytest.raises(ValueError, match="no results"):
        render_markdown([])
    with pytest.raises(ValueError, match=r"results\[0\]: missing field\(s\) model"):
        render_markdown([{key: value for key, value in RESULTS[0].items() if key != "model"}])
    with pytest.raises(ValueError, match=r"results\[1\]: model 'VST-7B-RL' has two results for cvbench \(vst\)"):
        render_markdown([RESULTS[0], RESULTS[0]])


def test_the_report_names_each_runs_generation_settings():
    with_run = {**RESULTS[0], "run": {"generation": {"max_new_tokens": 2048, "temperature": 0.01}}}
    markdown = render_markdown([with_run, RESULTS[2]])
    section = markdown.split("## cvbench (vst)")[1]
    assert "Generation: VST-7B-RL: max_new_tokens 2048, temperature 0.01." in section
