"""`vst` command line: a thin layer over the Python API.

    vst scenes generate --n 20 --out runs/scenes --seed 0
    vst scenes render SCENE_DIR
    vst scenes show SCENE_DIR --out preview.png
    vst demo

Errors print one line (`file: field: message`) and exit 1; `vst --debug ...` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml
from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vst import __version__

app = typer.Typer(help="vst: spatial perception and reasoning for vision-language models.", no_args_is_help=True, pretty_exceptions_enable=False)
scenes_app = typer.Typer(help="3D scenes: generate procedural rooms, render frames, preview.", no_args_is_help=True)
app.add_typer(scenes_app, name="scenes")
data_app = typer.Typer(help="Spatial QA data: scenes -> VST-P samples -> parquet shards; stats, preview, export.", no_args_is_help=True)
app.add_typer(data_app, name="data")
eval_app = typer.Typer(help="Benchmarks with official scoring: run a model, re-score predictions, report.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
train_app = typer.Typer(help="Progressive training: base (the tiny base model), sft (stage 1), coldstart (stage 2, CoT), rl (stage 3, GRPO).", no_args_is_help=True)
app.add_typer(train_app, name="train")
infer_app = typer.Typer(help="Inference with a checkpoint: chat (optionally thinking), 3D detection drawn on the image.", no_args_is_help=True)
app.add_typer(infer_app, name="infer")
vla_app = typer.Typer(help="Vision-language-action on LIBERO: collect expert demos, evaluate a policy in closed loop, serve it.", no_args_is_help=True)
app.add_typer(vla_app, name="vla")
console = Console(stderr=True)
_state = {"debug": False}

@contextlib.contextmanager
def reporting_errors():
    """Turn expected failures (bad input files, missing system libraries) into one line and exit code 1."""
    try:
        yield
    except (ValueError, OSError, RuntimeError, KeyError, yaml.YAMLError) as error:
        if _state["debug"]:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        # The message is printed as plain text: error texts hold brackets ("[rank0]", "[1, 2]") that rich would
        # otherwise read as markup, hiding the message or failing on it.
        console.print(Text.assemble(("error: ", "bold red"), str(message)), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def read_json_files(paths: list[Path]) -> list[dict]:
    """The JSON files the user named; a missing or malformed one is an error naming it."""
    loaded = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: file not found")
        try:
            loaded.append(json.loads(path.read_text()))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    return loaded


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def part_progress(progress: Progress, description: str, total: int, unit: str):
    """The `on_scene` callback of a job over scenes (in process, worker processes or Ray tasks): one step per part
    finished; the description shows the `unit`s written (samples, frames), their rate across all workers, and how
    many parts failed (each one also printed with its reason)."""
    task = progress.add_task(description, total=total)
    start, seen = time.perf_counter(), {"items": 0, "failed": 0}

    def on_part(name: str, items: int, error: str | None) -> None:
        if error:
            seen["failed"] += 1
            progress.console.print(Text(f"skipped {name}: {error}", style="yellow"))
        seen["items"] += int(items or 0)
        rate = seen["items"] / max(time.perf_counter() - start, 1e-6)
        failed = f" · {seen['failed']} failed" if seen["failed"] else ""
        progress.update(task, advance=1, description=f"{description} · {seen['items']:,} {unit} · {rate:,.1f} {unit}/s{failed}")

    return on_part


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the vst version and exit.")] = False,
) -> None:
    _state["debug"] = debug


# -- scenes -----------------------------------------------------------------------------------------------------
@scenes_app.command("generate")
def scenes_generate(
    n: Annotated[int, typer.Option("--n", min=1, help="Number of scenes.")] = 20,
    out: Annotated[Path, typer.Option("--out", help="Output folder (one sub-folder per scene).")] = Path("runs/scenes"),
    seed: Annotated[int, typer.Option("--seed", help="Base seed; scene i uses rng([seed, i]).")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (one llvmpipe thread each).")] = 1,
    image_size: Annotated[int, typer.Option("--image-size", min=32, help="Width and height of every frame in pixels.")] = 448,
    stills: Annotated[int, typer.Option("--stills", min=0, help="Single views per scene.")] = 4,
    pairs: Annotated[int, typer.Option("--pairs", min=0, help="View pairs per scene.")] = 2,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Render a walk-through video per scene.")] = True,
    video_frames: Annotated[tuple[int, int], typer.Option("--video-frames", help="Min and max video frames.")] = (30, 120),
    video_fps: Annotated[float, typer.Option("--video-fps", min=0.1, help="Video frame rate.")] = 4.0,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run the jobs as Ray tasks: 'local' (start Ray here), 'auto' (this node's cluster) or an address (ray://host:10001). Outputs go to --out, which every node must see. pip install 'vst[ray]'.")] = None,
) -> None:
    """Generate seeded procedural rooms and render their frames (resumable: finished scenes are skipped)."""
    from vst.scene.cameras import CameraConfig
    from vst.scene.generate import generate_scenes
    from vst.scene.procedural import ProceduralConfig

    cameras = CameraConfig(width=image_size, height=image_size, n_stills=stills, n_pairs=pairs, video=video, video_frames=tuple(video_frames), video_fps=video_fps)
    config = ProceduralConfig(cameras=cameras)
    with reporting_errors(), progress_bar() as progress:
        start = time.perf_counter()
        on_scene = part_progress(progress, "scenes", n, "frames")
        result = generate_scenes(out, n, seed, config, workers, on_scene, ray_address=ray)
    elapsed = time.perf_counter() - start
    rate = result.frames / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{len(result.generated)} generated, {len(result.skipped)} already there, {len(result.failed)} failed; "
        f"{result.frames} frames in {elapsed:.1f} s ({rate:.1f} frames/s) -> {out}"
    )
    if result.failed and not result.generated and not result.skipped:
        raise typer.Exit(1)


@scenes_app.command("render")
def scenes_render(scene_dir: Annotated[Path, typer.Argument(help="Folder with a scene.json (room, objects, cameras).")]) -> None:
    """Render (or re-render) the frames of a scene.json, e.g. one whose layout was written by hand."""
    from vst.scene.capture import render_scene
    from vst.scene.types import Scene

    with reporting_errors():
        scene = Scene.load(scene_dir, check_files=False)
        if not scene.frames:
            raise ValueError(f"{scene_dir / 'scene.json'}: frames: no cameras to render")
        rendered = render_scene(scene, scene_dir)
    console.print(f"rendered {len(rendered.frames)} frames -> {scene_dir / 'frames'}")


@scenes_app.command("import")
def scenes_import(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="scannet, scannetpp, arkitscenes, embodiedscan, hypersim or ca1m.")],
    src: Annotated[Path, typer.Argument(help="The dataset's root folder, in its released layout (docs/scenes.md).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (one vst scene folder per scan).")],
    scene: Annotated[Optional[list[str]], typer.Option("--scene", help="Import only this scene id; repeatable (default: every scene found).")] = None,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Keep every N-th frame of each scan's stream.")] = 1,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", min=1, help="At most N frames per scene, evenly spaced (after --stride).")] = None,
    max_side: Annotated[int, typer.Option("--max-side", min=32, help="Frames are resized so that their longer side is at most this.")] = 640,
    fps: Annotated[float, typer.Option("--fps", min=0.1, help="Frame rate of each scene's walk-through video (VST: 2).")] = 2.0,
    stills: Annotated[int, typer.Option("--stills", min=0, help="Frames per scene also offered as single views.")] = 8,
    pairs: Annotated[int, typer.Option("--pairs", min=0, help="View pairs per scene.")] = 4,
    option: Annotated[Optional[list[str]], typer.Option("--option", help="Format option KEY=VALUE, e.g. labels=nyu40 (scannet), split=val (embodiedscan); repeatable.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes, one scene each at a time.")] = 1,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run the jobs as Ray tasks: 'local' (start Ray here), 'auto' (this node's cluster) or an address (ray://host:10001). Outputs go to --out, which every node must see. pip install 'vst[ray]'.")] = None,
) -> None:
    """Import real RGB-D scans as vst scenes (resumable: finished scenes are skipped; a bad scene is reported and skipped)."""
    from vst.scene.importers import ImportOptions, import_scenes, reader

    with reporting_errors():
        extra = {}
        for item in option or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--option {item}: expected KEY=VALUE")
            extra[key] = value
        options = ImportOptions(stride=stride, max_frames=max_frames, max_side=max_side, fps=fps, stills=stills, pairs=pairs, extra=extra)
        if not src.exists():
            raise FileNotFoundError(f"{src}: no such file or folder")
        with progress_bar() as progress:
            total = len(scene) if scene else len(reader(fmt).list_scenes(src, options))
            start = time.perf_counter()
            on_scene = part_progress(progress, f"{fmt} scenes", total, "frames")
            result = import_scenes(fmt, src, out, scene, options, workers, on_scene, ray_address=ray)
    elapsed = time.perf_counter() - start
    console.print(f"{len(result.imported)} imported, {len(result.skipped)} already there, {len(result.failed)} failed; "
                  f"{result.frames} frames in {elapsed:.1f} s -> {out}")
    if result.failed and not result.imported and not result.skipped:
        raise typer.Exit(1)


@scenes_app.command("show")
def scenes_show(
    scene_dir: Annotated[Path, typer.Argument(help="A rendered scene folder.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("preview.png"),
    frames: Annotated[int, typer.Option("--frames", min=1, max=8, help="How many frames to show.")] = 3,
) -> None:
    """Preview a scene: RGB, depth and instance maps of a few frames, and a top-down plan with cameras."""
    from vst.scene.preview import show_scene

    with reporting_errors():
        path = show_scene(scene_dir, out, frames)
    console.print(f"preview -> {path}")


# -- data -------------------------------------------------------------------------------------------------------
@data_app.command("generate")
def data_generate(
    scenes: Annotated[list[str], typer.Option("--scenes", help="Folder of scene folders (vst scenes generate / import); repeat it to mix sources, as DIR=WEIGHT for each root's share of the samples (e.g. --scenes scannet=0.4 --scenes arkit=0.3 --scenes procedural=0.3).")],
    out: Annotated[str, typer.Option("--out", help="Output folder for shards and manifests, or an fsspec URL every worker can write to (s3://bucket/vst-p; needs s3fs, gcsfs, ...).")],
    recipe: Annotated[str, typer.Option("--recipe", help="Packaged recipe name (vst-p) or a YAML file.")] = "vst-p",
    n: Annotated[int, typer.Option("--n", min=1, help="Samples requested over all shards.")] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    shard_index: Annotated[int, typer.Option("--shard-index", min=0, help="Which shard this process writes.")] = 0,
    num_shards: Annotated[int, typer.Option("--num-shards", min=1, help="Scenes are split round-robin over shards.")] = 1,
    fov_unify: Annotated[bool, typer.Option("--fov-unify/--no-fov-unify", help="Rescale 3D-detection images to VST's virtual camera.")] = True,
    answer_form: Annotated[Optional[str], typer.Option("--answer-form", help="letter: VST's lettered options (the default); text: the name-answer form (the option's text is the answer). Overrides the recipe's options.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes, one scene each at a time.")] = 1,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run the jobs as Ray tasks: 'local' (start Ray here), 'auto' (this node's cluster) or an address (ray://host:10001). Outputs go to --out, which every node must see. pip install 'vst[ray]'.")] = None,
) -> None:
    """Generate VST-P samples from scenes into a parquet shard (resumable; shards are independent)."""
    from vst.common.storage import Store
    from vst.data.engine import EngineConfig, plan_scenes, run
    from vst.data.recipes import load_recipe

    with reporting_errors():
        roots, weights = _scene_roots(scenes)
        config = EngineConfig(scenes=roots if len(roots) > 1 else roots[0], out=_out(out), recipe=load_recipe(recipe), n=n, seed=seed,
                              shard_index=shard_index, num_shards=num_shards, options={"fov_unify": fov_unify, **_answer_form(answer_form)}, resume=resume,
                              scene_weights=weights)
        total = sum(1 for p in plan_scenes(config, config.recipe.quotas(n)) if p.index % num_shards == shard_index)
        with progress_bar() as progress:
            manifest = run(config, part_progress(progress, "scenes", total, "samples"), workers, ray_address=ray)
    console.print(f"{manifest['rows']} samples, {len(manifest['counts_per_skill'])} skills, {len(manifest['skipped_scenes'])} scenes skipped -> {Store(config.out).display(manifest['shard'])}")
    for key, error in manifest["skill_errors"].items():
        console.print(f"[yellow]skill error {key}: {error}[/]", highlight=False)


def _answer_form(form: str | None) -> dict:
    """The engine option for --answer-form; without the flag nothing is added (the recipe's options, else letters), so
    default shards keep their fingerprints."""
    from vst.data.choices import check_answer_form

    if form is None:
        return {}
    try:
        return {"answer_form": check_answer_form({"answer_form": form})}
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--answer-form") from None


def _scene_roots(items: list[str]) -> tuple[list[Path], list[float] | None]:
    """`--scenes DIR` or `--scenes DIR=WEIGHT`, repeated: (roots, weights or None). Weights go on all or none."""
    roots, weights = [], []
    for item in items:
        path, sep, weight = item.rpartition("=") if "=" in item else (item, "", "")
        roots.append(Path(path))
        if sep:
            try:
                weights.append(float(weight))
            except ValueError:
                raise ValueError(f"--scenes {item}: the weight after '=' must be a number") from None
    if weights and len(weights) != len(roots):
        raise ValueError("--scenes: give a weight to every root (DIR=WEIGHT) or to none")
    return roots, weights or None


def _out(out: str) -> Path | str:
    """--out as given: a URL stays a string (a Path would fold s3:// into s3:/), a folder becomes a Path."""
    from vst.common.storage import is_url

    return out if is_url(out) else Path(out)


@data_app.command("reason")
def data_reason(
    scenes: Annotated[Path, typer.Option("--scenes", help="Folder of rendered scenes (vst scenes generate).")],
    out: Annotated[str, typer.Option("--out", help="Output folder (vst-r-cot.parquet, vst-r-rl.parquet, manifest.json), or an fsspec URL (s3://bucket/vst-r).")],
    recipe: Annotated[str, typer.Option("--recipe", help="Packaged VST-R recipe (vst-r) or a YAML file.")] = "vst-r",
    n: Annotated[int, typer.Option("--n", min=1, help="Spatial items (CoT + RL) in all; general items are added in the recipe's proportion.")] = 500,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    teacher_url: Annotated[Optional[str], typer.Option("--teacher-url", help="OpenAI-compatible endpoint for teacher traces, e.g. http://127.0.0.1:8000/v1 (default: geometry templates).")] = None,
    teacher_model: Annotated[Optional[str], typer.Option("--teacher-model", help="Model name at --teacher-url.")] = None,
    teacher_concurrency: Annotated[int, typer.Option("--teacher-concurrency", min=1, help="Teacher requests in flight.")] = 8,
    general: Annotated[Optional[list[str]], typer.Option("--general", help="CATEGORY=FILE of general reasoning data (gr_math, gr_ocr, gr_knowledge; .json/.jsonl/.parquet); repeatable.")] = None,
    answer_form: Annotated[Optional[str], typer.Option("--answer-form", help="letter (VST, the default) or text: as for vst data generate.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes, one scene each at a time.")] = 1,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run the scenes as Ray tasks: 'local', 'auto' or an address (ray://host:10001); --out must be shared storage. pip install 'vst[ray]'.")] = None,
) -> None:
    """VST-R: chain-of-thought traces and rule-checkable RL prompts from scenes (resumable; teacher answers are cached)."""
    from vst.common.storage import Store
    from vst.data.engine import list_scenes
    from vst.data.reasoning import ReasonConfig, load_reason_recipe, run_reason

    with reporting_errors():
        sources = {}
        for item in general or []:
            category, _, path = item.partition("=")
            if not path:
                raise ValueError(f"--general {item}: expected CATEGORY=FILE, e.g. gr_math=math.jsonl")
            sources[category] = Path(path)
        config = ReasonConfig(scenes=scenes, out=_out(out), recipe=load_reason_recipe(recipe), n=n, seed=seed, general=sources,
                              teacher_url=teacher_url, teacher_model=teacher_model, teacher_concurrency=teacher_concurrency, resume=resume,
                              options=_answer_form(answer_form))
        with progress_bar() as progress:
            manifest = run_reason(config, part_progress(progress, "scenes", len(list_scenes(scenes)), "samples"),
                                  workers, ray_address=ray)
    outputs = manifest["outputs"]
    store = Store(config.out)
    console.print(f"{outputs['cot']['rows']} CoT samples -> {store.display(outputs['cot']['file'])}; {outputs['rl']['rows']} RL prompts -> {store.display(outputs['rl']['file'])}")
    if manifest["teacher"]:
        console.print(f"teacher: {manifest['teacher']}")
    for key, error in manifest["errors"].items():
        console.print(f"[yellow]error {key}: {error}[/]", highlight=False)
    for problem in manifest["general_problems"]:
        console.print(f"[yellow]{problem}[/]", highlight=False)


@data_app.command("merge")
def data_merge(
    shards: Annotated[list[Path], typer.Argument(help="Shard parquet files.")],
    out: Annotated[Path, typer.Option("--out", help="Merged parquet file.")],
) -> None:
    """Concatenate shards into one parquet file."""
    from vst.data.shards import concatenate

    with reporting_errors():
        for shard in shards:
            if not shard.is_file():
                raise FileNotFoundError(f"{shard}: file not found")
        rows = concatenate(list(shards), out)
    console.print(f"{rows} rows -> {out}")


@data_app.command("stats")
def data_stats(
    shards: Annotated[list[Path], typer.Argument(help="Shard parquet files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per skill and answer type, multiple-choice letter balance, token estimates."""
    from rich.table import Table

    from vst.data.inspect import shard_stats

    with reporting_errors():
        stats = shard_stats(shards)
    if as_json:
        typer.echo(json.dumps(stats, indent=1))
        return
    table = Table(title=f"{stats['rows']} samples, about {stats['tokens']['total']:,} tokens")
    for column in ("skill", "samples", "mean tokens", "answer letters"):
        table.add_column(column)
    for skill, count in stats["skills"].items():
        letters = " ".join(f"{k}:{v}" for k, v in stats["letters"].get(skill, {}).items())
        table.add_row(skill, str(count), str(stats["tokens"]["per_skill_mean"][skill]), letters)
    Console().print(table)
    Console().print("answer types: " + ", ".join(f"{k} {v}" for k, v in stats["answer_types"].items()))


@data_app.command("preview")
def data_preview(
    shards: Annotated[list[Path], typer.Argument(help="Shard parquet files.")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("preview.html"),
    n: Annotated[int, typer.Option("--n", min=1, help="Samples to show (spread over skills).")] = 24,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """An HTML page of samples (images with markers, question, answer, provenance) to check by eye."""
    from vst.data.inspect import preview_html

    with reporting_errors():
        path = preview_html(shards, out, n, seed)
    console.print(f"preview -> {path}")


@data_app.command("export")
def data_export(
    shards: Annotated[list[Path], typer.Argument(help="Shard parquet files.")],
    to: Annotated[str, typer.Option("--to", help="llava (JSON + media files) or verl (RL parquet, EasyR1 keys too).")],
    out: Annotated[Path, typer.Option("--out", help="Folder (llava) or parquet file (verl).")],
) -> None:
    """Export shards to LLaVA-style JSON or the verl / EasyR1 RL layout."""
    from vst.data.formats import to_llava, to_verl
    from vst.data.shards import read_samples

    with reporting_errors():
        if to == "llava":
            result = to_llava(read_samples(shards), out)
        elif to == "verl":
            result = f"{to_verl(read_samples(shards), out)} rows -> {out}"
        else:
            raise ValueError(f"--to: unknown format {to!r}; expected llava or verl")
    console.print(f"exported -> {result}")


# -- eval -------------------------------------------------------------------------------------------------------
@eval_app.command("score")
def eval_score(
    benchmark: Annotated[str, typer.Argument(help="Benchmark name, e.g. vsibench, cvbench, blink, mmsi, 3dsrbench.")],
    predictions: Annotated[Path, typer.Argument(help="predictions.jsonl: native row fields plus `response`.")],
    protocol: Annotated[str, typer.Option("--protocol", help="official (default) or the benchmark's other protocols, e.g. vst.")] = "official",
) -> None:
    """Re-score saved predictions with no model; prints {benchmark, protocol, overall, categories, n, n_unparsed} and,
    when `vst eval run` made them, "run" (model, source, generation settings) from run.json beside them."""
    from vst.eval.benchmarks import load_all
    from vst.eval.predictions import score_file
    from vst.eval.runner import read_run

    with reporting_errors():
        load_all()
        result = score_file(benchmark, predictions, protocol)
        made_by = read_run(predictions.parent)
        if made_by is not None:
            result["run"] = made_by
    typer.echo(json.dumps(result, indent=1))


@eval_app.command("run")
def eval_run(
    model: Annotated[str, typer.Option("--model", help="openai:<base_url>#<model> for any OpenAI-compatible server; tiny or a checkpoint path once the training stage lands.")],
    benchmark: Annotated[str, typer.Option("--benchmark", help="Benchmark name.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for predictions.jsonl and scores.json.")],
    source: Annotated[Optional[str], typer.Option("--source", help="HF dataset id or local folder (default: the benchmark's dataset).")] = None,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Pin the HF dataset revision.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    protocol: Annotated[str, typer.Option("--protocol")] = "official",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", min=1, help="Override the benchmark protocol's setting (e.g. det3d: 1,024; greedy letter answers: 64).")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", min=0.0, help="Override the benchmark protocol's sampling temperature.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard predictions in --out that another model, source or setting made (default: refuse).")] = False,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.001, help="openai: backends: seconds one request may take as a whole, per attempt (default 300).")] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", min=0, help="openai: backends: retries of a request that timed out or failed on the server's side (default 3).")] = None,
) -> None:
    """Run a model on a benchmark, writing predictions.jsonl (resumable), then score it."""
    from vst.eval.backends import make_backend
    from vst.eval.benchmarks import load_all
    from vst.eval.runner import RunConfig, run

    with reporting_errors(), progress_bar() as progress:
        load_all()
        options = {k: v for k, v in (("timeout_s", timeout), ("retries", retries)) if v is not None}
        if options and not model.startswith("openai:"):
            raise ValueError("--timeout and --retries apply to openai:<url>#<model> backends only")
        backend = make_backend(model, **options)
        task = progress.add_task(benchmark, total=None)
        config = RunConfig(benchmark, out, source, revision, limit, protocol, batch_size, max_new_tokens, temperature,
                           model=model, overwrite=overwrite)
        result = run(config, backend, lambda done, total: progress.update(task, completed=done, total=total))
    typer.echo(json.dumps(result, indent=1))


@eval_app.command("report")
def eval_report(
    results: Annotated[list[Path], typer.Argument(help="scores.json files (from vst eval run / score), each with a model name.")],
    out: Annotated[Path, typer.Option("--out", help="Markdown report to write; a PNG chart is written beside it.")] = Path("report.md"),
) -> None:
    """A table of models x benchmarks (like the VST README) plus per-category tables and a chart."""
    from vst.eval.report import render_report

    with reporting_errors():
        loaded = []
        for path, result in zip(results, read_json_files(results)):
            result.setdefault("model", path.parent.name)
            loaded.append(result)
        render_report(loaded, out, out.with_suffix(".png"))
    console.print(f"report -> {out} and {out.with_suffix('.png')}")


# -- train ------------------------------------------------------------------------------------------------------
def _train(config: Path, overrides: list[str], stage: str = "sft") -> None:
    import torch.distributed as dist

    from vst.pipeline import build_base
    from vst.train import train_stage

    try:
        with reporting_errors():
            if stage == "vla":
                from vst.vla.train import load_vla_config, train_vla

                if not config.is_file():
                    raise FileNotFoundError(f"{config}: config file not found")
                folder = train_vla(load_vla_config(config, overrides), log=lambda m: console.print(m, highlight=False))
            else:
                folder = build_base(config, overrides) if stage == "base" else train_stage(config, overrides, stage)
        if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
            console.print(f"checkpoint -> {folder}")
    finally:
        # Under torchrun / accelerate launch: without this, gloo threads sometimes abort at interpreter exit after a
        # good run and the launcher reports a failure (spec training.md §7.7).
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


@train_app.command("base")
def train_base_command(
    config: Annotated[Path, typer.Option("--config", help="YAML: SFT keys plus the base's data/model keys (configs/train/tiny-base.yaml).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. max_steps=2 output_dir=runs/b.")] = None,
) -> None:
    """Pretrain the tiny base (general, non-spatial data vst generates); re-running resumes from its checkpoints."""
    _train(config, overrides or [], stage="base")


@train_app.command("sft")
def train_sft_command(
    config: Annotated[Path, typer.Option("--config", help="YAML: TRL SFTConfig keys plus vst's (configs/train/*-sft.yaml).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. shards=[a.parquet] max_steps=20.")] = None,
) -> None:
    """Stage 1: perception SFT on VST-P shards (runs in-process or under accelerate launch / torchrun)."""
    _train(config, overrides or [])


@train_app.command("coldstart")
def train_coldstart_command(
    config: Annotated[Path, typer.Option("--config", help="YAML (configs/train/*-coldstart.yaml).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Stage 2: chain-of-thought cold start, the same SFT trainer on CoT samples with stage 2 settings."""
    _train(config, overrides or [])


@train_app.command("rl")
def train_rl_command(
    config: Annotated[Path, typer.Option("--config", help="YAML: TRL GRPOConfig keys plus vst's (configs/train/*-grpo.yaml).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Stage 3: GRPO with VST's settings (clip 0.2/0.28, KL off, online filtering), video-aware log-probs."""
    _train(config, overrides or [], stage="rl")


@train_app.command("vla")
def train_vla_command(
    config: Annotated[Path, typer.Option("--config", help="YAML: SFT keys plus the VLA's (configs/train/tiny-cpu-vla.yaml, qwen2_5vl-3b-vla.yaml).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. \"data=[DEMOS]\" max_steps=2 output_dir=CKPT.")] = None,
) -> None:
    """A VLA from any checkpoint with VST's recipe: 256-bin action tokens, one third-person frame turned 180°."""
    _train(config, overrides or [], stage="vla")


# -- vla --------------------------------------------------------------------------------------------------------
def _task_list(suite: str, tasks: Optional[str]) -> list[int]:
    from vst.vla.libero import n_tasks

    if not tasks or tasks == "all":
        return list(range(n_tasks(suite)))
    try:
        return [int(t) for t in tasks.split(",")]
    except ValueError:
        raise ValueError(f"--tasks: expected comma-separated task numbers or 'all', got {tasks!r}") from None


@vla_app.command("collect")
def vla_collect(
    out: Annotated[Path, typer.Option("--out", help="Folder for <task>_demo.hdf5 files (LIBERO's layout) and collect.json.")],
    suite: Annotated[str, typer.Option("--suite", help="libero_spatial (the scripted expert handles its pick-and-place goals).")] = "libero_spatial",
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated task numbers, or all.")] = "0",
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Episodes per task: initial states start .. start+N-1.")] = 10,
    start: Annotated[int, typer.Option("--start", min=0, help="First initial state.")] = 0,
    resolution: Annotated[int, typer.Option("--resolution", min=32, help="Camera side in pixels (LIBERO's data: 128; VST's regenerated: 256).")] = 128,
    wrist: Annotated[bool, typer.Option("--wrist", help="Also record the wrist camera.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Simulator processes.")] = 1,
) -> None:
    """Scripted-expert demonstrations in simulation (no download); successful episodes only; resumable."""
    from vst.vla.collect import collect

    with reporting_errors():
        task_ids = _task_list(suite, tasks)
        with progress_bar() as progress:
            bar = progress.add_task("episodes", total=len(task_ids) * episodes)
            kept = {"ok": 0}

            def on_episode(task: int, episode: int, success: bool, error: Optional[str]) -> None:
                kept["ok"] += success
                progress.update(bar, advance=1, description=f"episodes ({kept['ok']} successful)")
                if error:
                    console.print(f"[yellow]task {task} episode {episode}: {error}[/]", highlight=False)

            manifest = collect(suite, task_ids, episodes, out, start=start, resolution=resolution, wrist=wrist,
                               workers=workers, on_episode=on_episode)
    for task, entry in manifest["tasks"].items():
        console.print(f"task {task}: {entry['succeeded']}/{entry['attempted']} successful, {entry['steps']} steps "
                      f"-> {entry['file']}", highlight=False)
    console.print(f"{out / 'collect.json'} ({manifest['seconds']:.0f} s)")


@vla_app.command("eval")
def vla_eval(
    model: Annotated[str, typer.Option("--model", help="A folder written by vst train vla, or the URL of vst vla serve.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json, episodes.jsonl and videos/.")],
    suite: Annotated[str, typer.Option("--suite", help="libero_spatial, libero_object, libero_goal, libero_10 or libero_90.")] = "libero_spatial",
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated task numbers, or all.")] = "all",
    episodes_per_task: Annotated[int, typer.Option("--episodes-per-task", min=1, help="The anchors' protocol: 50.")] = 50,
    start: Annotated[int, typer.Option("--start", min=0, help="First initial state.")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Simulator processes, each with its own policy (or client).")] = 1,
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Camera side (default: the training data's).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Policy steps per episode (default: the suite's: 220/280/300/520).")] = None,
    videos: Annotated[bool, typer.Option("--videos/--no-videos", help="Save an mp4 per episode.")] = True,
    device: Annotated[str, typer.Option("--device", help="Where an in-process model runs.")] = "cpu",
) -> None:
    """Closed-loop success rate with VST/OpenVLA's protocol; per-task table with 95 % intervals; resumable."""
    from rich.table import Table

    from vst.vla.evaluate import evaluate

    with reporting_errors():
        task_ids = _task_list(suite, tasks)
        with progress_bar() as progress:
            bar = progress.add_task("episodes", total=len(task_ids) * episodes_per_task)
            wins = {"k": 0}

            def on_episode(record: dict) -> None:
                wins["k"] += record["success"]
                progress.update(bar, advance=1, description=f"episodes ({wins['k']} successful)")
                if record["error"]:
                    console.print(f"[yellow]task {record['task']} episode {record['episode']}: {record['error']}[/]",
                                  highlight=False)

            result = evaluate(model, suite, task_ids, episodes_per_task, out, start=start, workers=workers,
                              resolution=resolution, videos=videos, max_steps=max_steps, device=device,
                              on_episode=on_episode)
    table = Table(title=f"{suite}: {model}")
    for column in ("task", "success", "rate %", "95 % CI", "instruction"):
        table.add_column(column)
    for task, entry in result["tasks"].items():
        table.add_row(task, f"{entry['success']}/{entry['episodes']}", f"{entry['success_rate']}",
                      f"{entry['ci95'][0]:.1f}–{entry['ci95'][1]:.1f}", entry["instruction"] or "")
    table.add_row("all", f"{result['success']}/{result['episodes']}", f"{result['success_rate']}",
                  f"{result['ci95'][0]:.1f}–{result['ci95'][1]:.1f}", "")
    console.print(table)
    console.print(f"{out / 'results.json'}")


@vla_app.command("compare")
def vla_compare(
    results: Annotated[list[Path], typer.Argument(help="results.json of vst vla eval; the first is the reference arm.")],
) -> None:
    """Success rates of several policies and each one's difference from the first, with 95 % intervals (Newcombe)."""
    from rich.table import Table

    from vst.vla.evaluate import compare

    with reporting_errors():
        table_data = compare(read_json_files(results))
    table = Table(title=table_data["suite"])
    for column in ("model", "success", "rate %", "95 % CI", "difference vs first", "95 % CI of difference"):
        table.add_column(column)
    for row in table_data["arms"]:
        diff = row.get("difference")
        table.add_row(row["model"], f"{row['success']}/{row['episodes']}", f"{row['success_rate']}",
                      f"{row['ci95'][0]:.1f}–{row['ci95'][1]:.1f}", f"{diff['value']:+.1f}" if diff else "—",
                      f"{diff['ci95'][0]:+.1f} … {diff['ci95'][1]:+.1f}" if diff else "—")
    console.print(table)
    typer.echo(json.dumps(table_data, indent=1))


@vla_app.command("serve")
def vla_serve(
    model: Annotated[str, typer.Option("--model", help="A folder written by vst train vla.")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1 ...")] = "cpu",
) -> None:
    """Serve the policy over HTTP (POST /act, GET /info) so that simulators elsewhere can run vst vla eval --model URL."""
    from vst.vla.policy import VLAPolicy, make_server

    with reporting_errors():
        server = make_server(VLAPolicy.load(model, device=device), host, port)
    console.print(f"serving {model} on http://{host}:{server.server_address[1]} (POST /act, GET /info)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- main job ---------------------------------------------------------------------------------------------------
@app.command("demo")
def demo(
    config: Annotated[Optional[Path], typer.Option("--config", help="Pipeline YAML (default: configs/pipeline/tiny-cpu.yaml; real scale: configs/pipeline/qwen2_5vl-3b.yaml).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: the config's `out`).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Override the config's seed.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete --out first instead of resuming it.")] = False,
) -> None:
    """The main job: scenes -> VST-P + VST-R -> SFT -> CoT cold start -> GRPO, held-out vst-synth after every stage,
    then out/report.md. Resumes an interrupted run in --out."""
    from vst.pipeline import Pipeline, clean, default_config, load_pipeline_config

    with reporting_errors():
        path = config or default_config()
        settings, folder = load_pipeline_config(path, {"out": str(out) if out else None, "seed": seed})
        if fresh:
            clean(Path(settings.out))
        start = time.perf_counter()

        def log(message: str) -> None:
            console.print(f"[dim]{time.perf_counter() - start:6.0f} s[/] {message}")

        report = Pipeline(settings, folder, log).run()
    console.print(f"report -> {report} (and {report.parent / 'report'}/*.png)")


# -- infer ------------------------------------------------------------------------------------------------------
@infer_app.command("chat")
def infer_chat(
    question: Annotated[str, typer.Argument(help="The question, e.g. \"Which is closer to the camera, the chair or the lamp?\"")],
    model: Annotated[str, typer.Option("--model", help="Checkpoint folder, hub id, tiny, or openai:<base_url>#<model>.")],
    image: Annotated[Optional[list[Path]], typer.Option("--image", help="An image the question is about; repeat for several.")] = None,
    video: Annotated[Optional[Path], typer.Option("--video", help="A video the question is about (sampled at 2 fps, VST's SFT setting).")] = None,
    think: Annotated[bool, typer.Option("--think", help="Use VST's thinking system prompt: the answer reads <think>...</think> answer.")] = False,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 1024,
) -> None:
    """Ask the model a question about images and/or a video; prints its raw answer."""
    from vst.infer import chat

    with reporting_errors():
        for path in [*(image or []), *([video] if video else [])]:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: file not found")
        answer = chat(model, question, images=image or [], video=video, think=think, max_new_tokens=max_new_tokens)
    typer.echo(answer)


@infer_app.command("detect3d")
def infer_detect3d(
    model: Annotated[str, typer.Option("--model", help="Checkpoint folder, hub id, tiny, or openai:<base_url>#<model>.")],
    image: Annotated[Path, typer.Option("--image", help="The image to detect objects in.")],
    categories: Annotated[str, typer.Option("--categories", help="Comma-separated category names, e.g. chair,table.")],
    hfov: Annotated[float, typer.Option("--hfov", min=1.0, max=179.0, help="Horizontal field of view in degrees; 60 (VST's cookbook) when the camera is unknown.")] = 60.0,
    out: Annotated[Optional[Path], typer.Option("--out", help="PNG with the boxes drawn (default: ./<image stem>_boxes3d.png).")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 1024,
) -> None:
    """3D boxes of the given categories with VST's camera prompt; draws them on the image and prints them as JSON."""
    from vst.infer import detect3d, draw_boxes3d

    out = out or Path(f"{image.stem}_boxes3d.png")
    with reporting_errors():
        if not image.is_file():
            raise FileNotFoundError(f"{image}: image not found")
        detection = detect3d(model, image, categories, hfov, max_new_tokens=max_new_tokens)
        out.parent.mkdir(parents=True, exist_ok=True)
        draw_boxes3d(image, detection.boxes, detection.intrinsics).save(out)
    if not detection.parsed:
        console.print("[bold yellow]warning:[/] the model output did not parse as VST's 3D boxes (JSON list of "
                      "bbox_3d/label); no boxes drawn. The raw text is in `response`.")
    console.print(f"{len(detection.boxes)} boxes -> {out}")
    typer.echo(json.dumps({"image": str(image), "out": str(out), **detection.to_json()}, indent=1))


def main(argv: Optional[list[str]] = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="vst")


if __name__ == "__main__":
    main()
