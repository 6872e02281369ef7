"""A trained VLA as a policy: `predict(image, instruction, state=None) -> (steps, 7)` actions, in process or over HTTP.

`VLAPolicy.load(folder)` reads what `vst train vla` wrote (the Hugging Face folder, `norm_stats.json`, `vla.json`).
A prediction renders the frame and the prompt through the same path as training (`vla.data.frame_png`,
`vst.models.processing.encode_for_generation`), decodes `chunk × 7` tokens greedily with the KV cache, only action
tokens allowed unless `constrained_decoding` is off (VST's exact, unconstrained decode), maps them to the bins'
centres, un-normalises the masked dimensions and binarises the gripper with `sign(2x - 1)` (spec vla.md §2.3-2.4).

`serve(policy, port)` exposes it as `POST /act` with JSON `{"image": base64 PNG of the raw camera frame,
"instruction": str, "state": [8 floats] (a policy trained with proprio only)}` -> `{"actions": [[7 floats], ...]}`,
so a GPU server can drive CPU simulators; `RemotePolicy(url)` is the client with the same `predict`.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np


class VLAPolicy:
    def __init__(self, model, processor, normalizer, settings: dict):
        from vst.vla.actions import BinningTokenizer, action_tokens

        self.model, self.processor, self.normalizer, self.settings = model, processor, normalizer, settings
        self.tokenizer = BinningTokenizer(settings["n_bins"], settings.get("dim", 7), settings.get("chunk", 1))
        self.action_ids = processor.tokenizer.convert_tokens_to_ids(action_tokens(self.tokenizer.n_bins))
        if any(i is None or i == processor.tokenizer.unk_token_id for i in self.action_ids):
            raise ValueError("policy: the tokenizer has no <|action_i|> tokens; was the model trained by vst train vla?")
        self.first_id = self.action_ids[0]
        self.proprio = normalizer.proprio() if settings.get("proprio") else None
        if settings.get("proprio") and self.proprio is None:
            raise ValueError("policy: vla.json says proprio but norm_stats.json has no proprio statistics")

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu", dtype: str = "float32") -> VLAPolicy:
        from vst.models.loading import load_model
        from vst.vla.actions import QuantileNormalizer
        from vst.vla.train import SETTINGS_FILE, STATS_FILE

        folder = Path(folder)
        for name in (SETTINGS_FILE, STATS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name}: missing; give a folder written by vst train vla")
        settings = json.loads((folder / SETTINGS_FILE).read_text())
        model, processor = load_model(str(folder), device=device, dtype=dtype)
        return cls(model, processor, QuantileNormalizer.load(folder / STATS_FILE), settings)

    @property
    def execute_steps(self) -> int:
        return int(self.settings.get("execute_steps") or self.tokenizer.chunk)

    def _inputs(self, images: list[np.ndarray], instructions: list[str], states=None):
        from vst.data.sample import IMAGE_PLACEHOLDER, Media, Sample, Turn
        from vst.models.processing import Budgets, encode_for_generation
        from vst.vla.data import frame_png, question

        size = int(self.settings["image_size"])
        states = states if states is not None else [None] * len(images)
        prompts = [Sample(id=str(i), type="vla", conversations=[
            Turn("human", IMAGE_PLACEHOLDER + question(text, state, self.proprio, self.tokenizer.n_bins))],
            images=[Media(frame_png(image, size, bool(self.settings.get("rotate_180", True))))])
            for i, (image, text, state) in enumerate(zip(images, instructions, states))]
        budgets = Budgets(image_min_pixels=self.settings.get("image_min_pixels", 56 * 56),
                          image_max_pixels=self.settings.get("image_max_pixels", size * size))
        return encode_for_generation(prompts, self.processor, budgets).to(self.model.device)

    def predict_batch(self, images: list[np.ndarray], instructions: list[str], states=None) -> np.ndarray:
        """(B, chunk, 7) actions for raw camera frames (as the simulator renders them) and instructions; `states`
        (B, 8), the robot's proprio, when the policy was trained with it (`proprio`)."""
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList

        first, n = self.first_id, self.tokenizer.n_bins

        class OnlyActions(LogitsProcessor):
            def __call__(self, input_ids, scores):
                masked = torch.full_like(scores, float("-inf"))
                masked[:, first:first + n] = scores[:, first:first + n]
                return masked

        inputs = self._inputs(images, instructions, states)
        processors = LogitsProcessorList([OnlyActions()]) if self.settings.get("constrained_decoding", True) else None
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=self.tokenizer.n_tokens, min_new_tokens=self.tokenizer.n_tokens,
                                         do_sample=False, logits_processor=processors,
                                         pad_token_id=self.processor.tokenizer.pad_token_id)
        new = output[:, inputs["input_ids"].shape[1]:].cpu().numpy()
        actions = []
        for row in new:
            local = np.clip(row[: self.tokenizer.n_tokens] - first, 0, n - 1)  # unconstrained: non-action ids clip
            actions.append(self.to_actions(self.tokenizer.decode(local)))
        return np.stack(actions)

    def to_actions(self, normalized: np.ndarray) -> np.ndarray:
        """Normalised (chunk, 7) -> environment actions: un-normalised where the mask is set, gripper -1/+1."""
        actions = self.normalizer.unnormalize(normalized)
        actions[..., -1] = np.where(2.0 * actions[..., -1] - 1.0 > 0, 1.0, -1.0)
        return actions

    def predict(self, image: np.ndarray, instruction: str, state: np.ndarray | None = None) -> np.ndarray:
        return self.predict_batch([image], [instruction], None if state is None else [state])[0]


def encode_image(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode_image(text: str) -> np.ndarray:
    from PIL import Image

    try:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB"))
    except Exception as error:  # noqa: BLE001 - a bad request gets a 400 with the reason
        raise ValueError(f"image: not a base64 PNG/JPEG ({error})") from None


class RemotePolicy:
    """The client of `serve`: the same `predict` over HTTP."""

    def __init__(self, url: str, timeout: float = 120.0):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.settings = self._get("/info")

    def _get(self, path: str) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.url + path, timeout=self.timeout) as response:
            return json.loads(response.read())

    @property
    def execute_steps(self) -> int:
        return int(self.settings.get("execute_steps") or self.settings.get("chunk", 1))

    def predict(self, image: np.ndarray, instruction: str, state: np.ndarray | None = None) -> np.ndarray:
        import urllib.error
        import urllib.request

        request = {"image": encode_image(image), "instruction": instruction}
        if state is not None:
            request["state"] = np.asarray(state, dtype=np.float64).tolist()
        body = json.dumps(request).encode()
        request = urllib.request.Request(self.url + "/act", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return np.asarray(json.loads(response.read())["actions"], dtype=np.float64)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{self.url}/act: {error.code} {error.read().decode(errors='replace')}") from None


def make_server(policy: VLAPolicy, host: str = "127.0.0.1", port: int = 8000):
    """A `ThreadingHTTPServer` (one model call at a time) serving `GET /info` and `POST /act`."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/info":
                self._reply(200, policy.settings)
            else:
                self._reply(404, {"error": f"{self.path}: not found (GET /info, POST /act)"})

        def do_POST(self):  # noqa: N802
            if self.path != "/act":
                return self._reply(404, {"error": f"{self.path}: not found (POST /act)"})
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                image, instruction = decode_image(request["image"]), str(request["instruction"])
                state = None if request.get("state") is None else np.asarray(request["state"], dtype=np.float64)
                with lock:
                    actions = policy.predict(image, instruction, state)
            except (KeyError, ValueError, TypeError) as error:
                return self._reply(400, {"error": f"bad request: {error}"})
            self._reply(200, {"actions": actions.tolist()})

        def log_message(self, *args):  # quiet: one line per request would drown the simulators' progress
            pass

    return ThreadingHTTPServer((host, port), Handler)


def load_policy(model: str, device: str = "cpu"):
    """A `RemotePolicy` for an http(s) URL, else a `VLAPolicy` loaded from the folder."""
    if model.startswith(("http://", "https://")):
        return RemotePolicy(model)
    return VLAPolicy.load(model, device=device)
