"""VST-P skills. Importing this package registers every skill module in `SKILLS` (registration is explicit
Python, not configuration strings)."""

from vst.data.skills import (  # noqa: F401  (each module registers its skills on import)
    captions,
    mi_cameras,
    mi_correspondence,
    mi_detection,
    mi_relations,
    si_depth,
    si_detection,
    si_distance,
    si_measurement,
    video_counting,
    video_measurement,
    video_others,
    video_relations,
    video_route,
    video_spatiotemporal,
)
from vst.data.skills.registry import SKILLS, Skill, get_skill, register_skill

__all__ = ["SKILLS", "Skill", "get_skill", "register_skill"]
