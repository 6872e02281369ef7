"""VST-R teacher distillation: traces written by a VLM behind any OpenAI-compatible endpoint (spec paper.md §3.2).

The teacher sees the item's images, a BEV render (`vst.data.bev`), the object facts, the question and the ground
truth, under VST's thinking system prompt, and writes the reasoning; a trace is kept only if its format reward is 1
and its answer scores full marks under the item's reward (`vst.data.reasoning.passes`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from vst.data.context import SceneContext
from vst.data.reasoning import cot_sample, final_answer, passes, referred_ids, strip_direct_instruction
from vst.data.sample import Sample
from vst.scene.types import atomic_write_text


TEACHER_INSTRUCTIONS = (
    "You are writing the reasoning for a spatial question about a room. The first {n} image(s) are the question's "
    "images; the last image is a bird's-eye view (BEV) of the same room with the cameras drawn as {cameras} and the "
    "question's objects outlined in red. Object facts (metres; right/forward are in each camera's floor frame):\n"
    "{facts}\n\nQuestion: {question}\nCorrect answer: {answer}\n\n"
    "Write the step-by-step reasoning a careful person would follow from the question's images alone to reach the "
    "correct answer: describe each view, say how the camera moved between views, merge them into one layout, apply "
    "the question's reference frame, and conclude. Do not mention the BEV, the object facts or that the answer was "
    "given. Reply exactly as <think> reasoning </think> followed by the final answer."
)


@dataclass
class TeacherStats:
    kept: int = 0
    rejected: int = 0
    failed: int = 0
    cached: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: "TeacherStats") -> None:
        self.kept, self.rejected, self.failed, self.cached = (self.kept + other.kept, self.rejected + other.rejected,
                                                               self.failed + other.failed, self.cached + other.cached)
        self.errors = (self.errors + other.errors)[:20]


class Teacher:
    """Distils traces from a VLM behind an OpenAI-compatible chat endpoint (vLLM, SGLang, a hosted API).

    Requests run `concurrency` at a time with retries and exponential back-off (`vst.common.clients.OpenAIBackend`);
    every answer is cached on disk under `cache_dir` (one JSON file per request hash), so a rerun or a resumed run
    sends only what is missing. A request that fails for good is counted and left uncached.
    """

    def __init__(self, base_url: str, model: str, cache_dir: str | Path, *, concurrency: int = 8, retries: int = 3,
                 backoff_s: float = 1.0, timeout_s: float = 300.0, max_tokens: int = 1024, api_key: str | None = None):
        from vst.common.clients import OpenAIBackend

        self.backend = OpenAIBackend(base_url, model, api_key, concurrency=1, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)
        self.model, self.concurrency, self.max_tokens = model, concurrency, max_tokens
        self.cache_dir = Path(cache_dir)

    def prompt(self, ctx: SceneContext, sample: Sample):
        from vst.data.bev import bev_png, camera_names, object_facts
        from vst.common.clients import Prompt
        from vst.data.sample import THINKING_SYSTEM_PROMPT

        frames = [ctx.scene.frame(f) for f in sample.meta_info.get("frame_ids", [])]
        bev = bev_png(ctx.scene, frames, referred_ids(sample))
        facts = json.dumps(object_facts(ctx.scene, frames), separators=(",", ":"))
        answer = final_answer(sample)[1]
        text = TEACHER_INSTRUCTIONS.format(n=len(sample.images), cameras=", ".join(f'"{c}"' for c in camera_names(len(frames))),
                                           facts=facts, question=strip_direct_instruction(sample.question).replace("<|image_pad|>", "").strip(),
                                           answer=answer)
        return Prompt(text=text, images=[m.bytes for m in sample.images] + [bev], system=THINKING_SYSTEM_PROMPT)

    def _key(self, prompt) -> str:
        digest = hashlib.sha256(f"{self.model}\n{self.max_tokens}\n{prompt.system}\n{prompt.text}".encode())
        for image in prompt.images:
            digest.update(hashlib.sha256(image).digest())
        return digest.hexdigest()

    def distil(self, ctx: SceneContext, samples: list[Sample], category: str) -> tuple[list[Sample], TeacherStats]:
        """CoT samples for the items whose teacher trace passes format and accuracy; the rest are counted."""
        from concurrent.futures import ThreadPoolExecutor

        from vst.common.clients import BackendError

        def ask(sample: Sample) -> tuple[str | None, str | None]:
            """(response, None) fresh, (response, "cached") from disk, or (None, error message)."""
            prompt = self.prompt(ctx, sample)
            path = self.cache_dir / f"{self._key(prompt)}.json"
            if path.is_file():
                return json.loads(path.read_text())["response"], "cached"
            try:
                response = self.backend.generate([prompt], max_new_tokens=self.max_tokens, temperature=0.0)[0]
            except BackendError as error:
                return None, f"{sample.id}: {error}"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({"id": sample.id, "model": self.model, "response": response}))
            return response, None

        # Our own pool rather than OpenAIBackend's concurrency: its batch call stops at the first failed item, and
        # here one failed request must only cost its own item.
        with ThreadPoolExecutor(max_workers=self.concurrency) as executor:
            answers = list(executor.map(ask, samples))
        stats, kept = TeacherStats(), []
        for sample, (response, note) in zip(samples, answers):
            if response is None:
                stats.failed += 1
                stats.errors.append(note)
                continue
            stats.cached += note == "cached"
            trace = normalise_trace(response)
            if trace is not None and passes(sample, trace):
                kept.append(cot_sample(sample, category, trace, f"teacher:{self.model}"))
                stats.kept += 1
            else:
                stats.rejected += 1
        return kept, stats


def normalise_trace(response: str) -> str | None:
    """`<think>…</think>answer` with the whitespace around the tags tidied; None when there is no single think block."""
    match = re.fullmatch(r"\s*<think>(.*?)</think>\s*(.*?)\s*", response, re.DOTALL)
    if match is None or "<think>" in match.group(1) or not match.group(2):
        return None
    return f"<think>{match.group(1).strip()}</think>{match.group(2)}"


