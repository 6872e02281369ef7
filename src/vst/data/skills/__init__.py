"""VST-P skills. Importing this package registers every skill module in `SKILLS` (registration is explicit
Python, not configuration strings)."""

from vst.data.skills import si_depth  # noqa: F401  (registers skills on import)
from vst.data.skills.registry import SKILLS, Skill, get_skill, register_skill

__all__ = ["SKILLS", "Skill", "get_skill", "register_skill"]
