"""Recipes: YAML files that mix skills by weight. `load_recipe("vst-p")` reads the packaged one; any path works too."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from vst.data.choices import check_answer_form


@dataclass
class Recipe:
    name: str
    weights: dict[str, float]
    min_fraction: float = 0.0
    description: str = ""
    options: dict = field(default_factory=dict)

    def quotas(self, total: int) -> dict[str, int]:
        """Samples per skill for a run of `total`: proportional to weight, each at least `min_fraction` of the total."""
        weight_sum = sum(self.weights.values())
        shares = {name: max(weight / weight_sum, self.min_fraction) for name, weight in self.weights.items() if weight > 0}
        scale = sum(shares.values())
        return {name: max(1, round(total * share / scale)) for name, share in sorted(shares.items())}


def packaged_recipes() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def read_recipe(name_or_path: str) -> tuple[dict, str]:
    """(YAML data, source name) of a packaged recipe name or a .yaml path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: recipe file not found")
        text, source = path.read_text(), str(path)
    else:
        if name_or_path not in packaged_recipes():
            raise ValueError(f"unknown recipe {name_or_path!r}; packaged recipes: {', '.join(packaged_recipes())} (or give a .yaml path)")
        text, source = resources.files(__name__).joinpath(f"{name_or_path}.yaml").read_text(), f"{name_or_path}.yaml"
    return yaml.safe_load(text) or {}, source


def load_recipe(name_or_path: str) -> Recipe:
    data, source = read_recipe(name_or_path)
    path = Path(name_or_path)
    if "cot" in data or "rl" in data:
        raise ValueError(f"{source}: a VST-R recipe (cot/rl keys): use it with `vst data reason --recipe`")
    unknown = set(data) - {"name", "description", "min_fraction", "skills", "options"}
    if unknown:
        raise ValueError(f"{source}: {sorted(unknown)[0]}: unknown key (expected name, description, min_fraction, skills, options)")
    skills = data.get("skills")
    if not isinstance(skills, dict) or not skills:
        raise ValueError(f"{source}: skills: expected a mapping of skill name to weight")
    for skill, weight in skills.items():
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"{source}: skills.{skill}: weight must be a number >= 0, got {weight!r}")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError(f"{source}: options: expected a mapping of switch to value, e.g. {{answer_form: text}}")
    try:
        check_answer_form(options)
    except ValueError as error:
        raise ValueError(f"{source}: options.{error}") from None
    return Recipe(data.get("name", path.stem), {k: float(v) for k, v in skills.items()}, float(data.get("min_fraction", 0.0)), data.get("description", ""), options)
