"""Benchmarks, one module each, registered by explicit import in `load_all`."""

from vst.eval.benchmarks.registry import BENCHMARKS, Aggregate, ItemScore, Prompt, get_benchmark, register_benchmark


def load_all() -> dict:
    """Import and register every benchmark module (idempotent); returns the registry."""
    import importlib

    for name in BENCHMARK_MODULES:
        module = importlib.import_module(f"vst.eval.benchmarks.{name}")
        if module.NAME not in BENCHMARKS:
            register_benchmark(module)
    return BENCHMARKS


BENCHMARK_MODULES = (
    "vsibench", "vsibench_debiased", "cvbench", "blink", "mmsi", "threedsrbench", "det3d_sunrgbd", "det3d_arkitscenes", "sunrgbd3d", "vst_synth",
    "mmstar", "mmbench", "realworldqa", "ai2d", "ocrbench", "mmmu",  # general ability (VLMEvalKit ImageMCQ, vst.eval.benchmarks.image_mcq)
)

__all__ = ["BENCHMARKS", "Aggregate", "ItemScore", "Prompt", "get_benchmark", "load_all", "register_benchmark"]
