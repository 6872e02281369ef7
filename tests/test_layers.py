"""The package's layers (DESIGN.md, docs/architecture.md): parallel (job running) and scene -> common -> data ->
models -> train -> eval -> vla -> the top (pipeline, infer, cli). A module never imports from a layer above it, not even inside a function:
every `import vst.X` / `from vst.X import` in the source tree is read with `ast` and checked."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vst"
LAYERS = {"parallel": 0, "scene": 0, "common": 1, "data": 2, "models": 3, "train": 4, "eval": 5,
          "vla": 6, "pipeline": 7, "infer": 7, "cli": 8, "__main__": 8, "__init__": 0}


def layer(module: str) -> int:
    """Layer of a dotted module under vst (`vst.eval.media` -> eval's)."""
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "vst":
            # `from vst import X`: X is a subpackage or a name of vst/__init__.py
            names = [node.module] if node.module != "vst" else [
                f"vst.{alias.name}" if alias.name in LAYERS else "vst" for alias in node.names]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "vst"]
    return found


MODULES = sorted(SRC.rglob("*.py"))


def test_every_package_has_a_layer():
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in MODULES}
    assert tops <= set(LAYERS), tops - set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_from_a_layer_above_it(path):
    own = layer("vst." + ".".join(path.relative_to(SRC).with_suffix("").parts))
    upward = [f"line {line}: {name}" for line, name in imports(path) if layer(name) > own]
    assert not upward, f"{path.relative_to(SRC)} imports from above its layer: {upward}"


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from vst.eval.runner import run\n    import vst.train.sft\n")
    assert [(line, name) for line, name in imports(module)] == [(4, "vst.eval.runner"), (5, "vst.train.sft")]
    assert layer("vst.eval.runner") > layer("vst.data.teacher")
