"""Benchmarks, one module each, registered here by explicit import."""

from vst.eval.benchmarks.registry import BENCHMARKS, Aggregate, ItemScore, Prompt, get_benchmark, register_benchmark

__all__ = ["BENCHMARKS", "Aggregate", "ItemScore", "Prompt", "get_benchmark", "register_benchmark"]
