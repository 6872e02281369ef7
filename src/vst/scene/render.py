"""CPU rendering with moderngl on an EGL context (Mesa llvmpipe): RGB, planar depth and instance ids.

One multi-render-target pass writes shaded RGB, camera z (float32 metres, computed as a varying, not read
from the non-linear z-buffer) and the instance id, all aliased so depth and ids are exact at pixel centres.
RGB is then anti-aliased by a post-process pass in the manner of FXAA: at pixels on an instance-id edge it
blends along the edge direction. (spec data.md §3.3 suggests a 4x MSAA colour pass instead; on llvmpipe that
pass cost 11 ms per 448x448 frame against about 1 ms for this one, and generation must stay above 30 frames/s.)
Pixel (i, j) has its centre at (i, j) in OpenCV intrinsics; GL samples at pixel centres u + 0.5, hence the
+0.5 in the projection.

EGL contexts are not fork-safe: create a `Renderer` inside each worker process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from vst.scene.geometry import invert_rigid
from vst.scene.mesh import Mesh
from vst.scene.types import Intrinsics

NEAR, FAR = 0.02, 200.0
GL_FROM_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])

# llvmpipe runs shaders on the CPU, and per-pixel work dominates its frame time (measured: 17 ms/frame with
# per-pixel lighting and value noise, 5 ms with this split). So lighting is per vertex (room surfaces are
# tessellated in mesh.py so it still varies smoothly) and the per-pixel material patterns are a few ALU ops.
VERTEX_SHADER = """
#version 330
uniform mat4 view;
uniform mat4 projection;
uniform vec3 eye;
uniform vec3 light_position;
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
in int in_instance;
in int in_material;
out vec3 shaded_color;
out vec2 pattern_uv;
out float camera_z;
flat out int instance;
flat out int material;
void main() {
    vec4 view_position = view * vec4(in_position, 1.0);
    gl_Position = projection * view_position;
    vec3 to_eye = normalize(eye - in_position);
    vec3 normal = dot(in_normal, to_eye) < 0.0 ? -in_normal : in_normal;  // two-sided lighting
    vec3 to_light = light_position - in_position;
    float inverse_distance = inversesqrt(dot(to_light, to_light));
    float diffuse = max(dot(normal, to_light) * inverse_distance, 0.0) * min(1.0, 2.5 * inverse_distance);
    float light = 0.38 + 0.5 * diffuse + 0.25 * max(dot(normal, to_eye), 0.0);
    shaded_color = in_color * light;
    if (in_material == 3 || in_material == 6) {  // metal and screens: highlight towards the light
        float highlight = max(dot(normal, normalize(to_light * inverse_distance + to_eye)), 0.0);
        highlight *= highlight; highlight *= highlight; highlight *= highlight;
        shaded_color += vec3(0.3 * highlight);
    }
    vec3 a = abs(in_normal);  // planar texture coordinates along the surface's dominant axis
    pattern_uv = a.z > max(a.x, a.y) ? in_position.xy : (a.x > a.y ? in_position.yz : in_position.xz);
    camera_z = -view_position.z;
    instance = in_instance;
    material = in_material;
}
"""

FRAGMENT_SHADER = """
#version 330
in vec3 shaded_color;
in vec2 pattern_uv;
in float camera_z;
flat in int instance;
flat in int material;
layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;
layout(location = 2) out int out_instance;
void main() {
    float pattern = 1.0;
    if (material == 4) {  // floor tiles (0.5 m) with grout lines
        vec2 cell = fract(pattern_uv * 2.0);
        float checker = mod(floor(pattern_uv.x * 2.0) + floor(pattern_uv.y * 2.0), 2.0);
        pattern = mix(0.55, 0.9 + 0.1 * checker, step(0.04, cell.x) * step(0.04, cell.y));
    } else if (material == 1) {  // wood grain
        pattern = 0.8 + 0.2 * abs(fract(pattern_uv.x * 6.0 + 0.35 * fract(pattern_uv.y * 1.7)) * 2.0 - 1.0);
    } else if (material == 2) {  // fabric weave (10 cm), a soft triangle wave so distant fabric does not shimmer
        vec2 wave = abs(fract(pattern_uv * 10.0) * 2.0 - 1.0);
        pattern = 0.88 + 0.12 * wave.x * wave.y;
    }
    out_color = vec4(shaded_color * pattern, 1.0);
    out_depth = camera_z;
    out_instance = instance;
}
"""

# Edge anti-aliasing, a full-screen pass over the exact pass's colour and ids. Pixels inside one instance with
# little local contrast keep their colour; on an id edge or a contrast edge the colour is blurred along the edge (direction from the luma gradient, or from
# the id edge where both sides have equal luma), and the wide blur is kept only if it stays in the local
# luma range, as in FXAA.
ANTIALIAS_VERTEX_SHADER = """
#version 330
void main() {
    vec2 corner = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);  // one triangle covering the screen
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
"""
ANTIALIAS_FRAGMENT_SHADER = """
#version 330
uniform sampler2D color;
uniform isampler2D ids;
uniform vec2 texel;
out vec4 out_color;
float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 center = texelFetch(color, p, 0).rgb;
    int id = texelFetch(ids, p, 0).r;
    int east = texelFetch(ids, p + ivec2(1, 0), 0).r, west = texelFetch(ids, p - ivec2(1, 0), 0).r;
    int north = texelFetch(ids, p + ivec2(0, 1), 0).r, south = texelFetch(ids, p - ivec2(0, 1), 0).r;
    float m = luma(center);
    float le = luma(texelFetch(color, p + ivec2(1, 0), 0).rgb), lw = luma(texelFetch(color, p - ivec2(1, 0), 0).rgb);
    float ln = luma(texelFetch(color, p + ivec2(0, 1), 0).rgb), ls = luma(texelFetch(color, p - ivec2(0, 1), 0).rgb);
    float contrast = max(max(max(le, lw), max(ln, ls)), m) - min(min(min(le, lw), min(ln, ls)), m);
    bool id_edge = east != id || west != id || north != id || south != id;
    if (!id_edge && contrast < 0.1) { out_color = vec4(center, 1.0); return; }  // flat interior: keep
    vec2 uv = gl_FragCoord.xy * texel;
    float nw = luma(texture(color, uv + vec2(-1.0, 1.0) * texel).rgb), ne = luma(texture(color, uv + vec2(1.0, 1.0) * texel).rgb);
    float sw = luma(texture(color, uv + vec2(-1.0, -1.0) * texel).rgb), se = luma(texture(color, uv + vec2(1.0, -1.0) * texel).rgb);
    vec2 direction = vec2(-((nw + ne) - (sw + se)), (nw + sw) - (ne + se));
    if (dot(direction, direction) < 1e-6) {
        vec2 normal = vec2(float(east != id) - float(west != id), float(north != id) - float(south != id));
        direction = vec2(-normal.y, normal.x);
    }
    float reduce = max((nw + ne + sw + se) * 0.03125, 0.0078125);
    direction = clamp(direction / (min(abs(direction.x), abs(direction.y)) + reduce), vec2(-8.0), vec2(8.0)) * texel;
    vec3 narrow = 0.5 * (texture(color, uv - direction / 6.0).rgb + texture(color, uv + direction / 6.0).rgb);
    vec3 wide = 0.5 * narrow + 0.25 * (texture(color, uv - direction * 0.5).rgb + texture(color, uv + direction * 0.5).rgb);
    float low = min(m, min(min(nw, ne), min(sw, se))), high = max(m, max(max(nw, ne), max(sw, se)));
    float wide_luma = luma(wide);
    out_color = vec4((wide_luma < low || wide_luma > high) ? narrow : wide, 1.0);
}
"""

# Silhouette-only program for `unoccluded_pixels`: positions in, nothing out but depth.
SILHOUETTE_VERTEX_SHADER = """
#version 330
uniform mat4 view;
uniform mat4 projection;
in vec3 in_position;
void main() { gl_Position = projection * view * vec4(in_position, 1.0); }
"""
SILHOUETTE_FRAGMENT_SHADER = """
#version 330
void main() {}
"""


@dataclass
class RenderOutput:
    rgb: np.ndarray  # (H, W, 3) uint8 (a read-only view into the read-back buffer)
    depth: np.ndarray  # (H, W) float32 camera z in metres, 0 where nothing was hit
    instance_ids: np.ndarray  # (H, W) int32, 0 = background / unlabelled


def opengl_projection(intrinsics: Intrinsics, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """(4, 4) GL projection matching OpenCV K where pixel (i, j) is centred at (i, j).

    GL samples pixel centres at u + 0.5, hence cx + 0.5 and cy + 0.5. Clip-space y is flipped (row 1 negated
    relative to the usual GL matrix) so framebuffer row 0 is the image's top row and read-back needs no flip.
    """
    width, height = intrinsics.width, intrinsics.height
    projection = np.zeros((4, 4))
    projection[0, 0] = 2.0 * intrinsics.fx / width
    projection[0, 2] = 1.0 - 2.0 * (intrinsics.cx + 0.5) / width
    projection[1, 1] = -2.0 * intrinsics.fy / height
    projection[1, 2] = -(2.0 * (intrinsics.cy + 0.5) / height - 1.0)
    projection[2, 2] = -(far + near) / (far - near)
    projection[2, 3] = -2.0 * far * near / (far - near)
    projection[3, 2] = -1.0
    return projection


def _load_triton_first() -> None:
    """Mesa's llvmpipe and Triton (pulled in by `torch._dynamo`, e.g. when transformers loads a model) each carry
    an LLVM. If llvmpipe compiles a shader first, a later `import triton` segfaults the process; importing Triton
    before the first GL context avoids the clash (seen with torch 2.14.1's triton and Mesa 22.3 llvmpipe)."""
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def create_context():
    """A headless OpenGL 3.3 context on EGL; on failure the error says which system packages are missing."""
    import moderngl

    _load_triton_first()

    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as error:  # moderngl raises a bare Exception subclass per backend failure
        raise RuntimeError(
            f"could not create an EGL OpenGL context ({error}). On Debian/Ubuntu install Mesa's EGL: "
            "apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri"
        ) from error


def _with_context(method):
    """Run a Renderer method with its own GL context current: with several standalone contexts in one process
    (one per Renderer), GL calls otherwise go to whichever context was made current last."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.ctx:
            return method(self, *args, **kwargs)

    return wrapper


class Renderer:
    """Renders meshes from OpenCV cameras. Framebuffers are created per image size and reused."""

    def __init__(self, antialias: bool = True):
        import moderngl

        self.moderngl = moderngl
        self.antialias = antialias
        self.ctx = create_context()
        self.program = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.silhouette_program = self.ctx.program(vertex_shader=SILHOUETTE_VERTEX_SHADER, fragment_shader=SILHOUETTE_FRAGMENT_SHADER)
        self._silhouette_vao = None
        self.antialias_program = self.ctx.program(vertex_shader=ANTIALIAS_VERTEX_SHADER, fragment_shader=ANTIALIAS_FRAGMENT_SHADER)
        self.antialias_program["color"].value = 0
        self.antialias_program["ids"].value = 1
        self._antialias_vao = self.ctx.vertex_array(self.antialias_program, [])
        self._framebuffers: dict[tuple[int, int], tuple] = {}
        self.mesh: Mesh | None = None
        self._vao = None
        self._buffers: list = []
        self._query = self.ctx.query(samples=True)

    @_with_context
    def set_mesh(self, mesh: Mesh) -> None:
        for buffer in self._buffers:
            buffer.release()
        if self._vao is not None:
            self._vao.release()
            self._silhouette_vao.release()
        arrays = [
            (mesh.positions, "3f", "in_position"),
            (mesh.normals, "3f", "in_normal"),
            (mesh.colors, "3f", "in_color"),
            (mesh.instance_ids, "i", "in_instance"),
            (mesh.materials, "i", "in_material"),
        ]
        self._buffers = [self.ctx.buffer(np.ascontiguousarray(array).tobytes()) for array, _, _ in arrays]
        self._vao = self.ctx.vertex_array(
            self.program, [(buffer, fmt, name) for buffer, (_, fmt, name) in zip(self._buffers, arrays)]
        )
        self._silhouette_vao = self.ctx.vertex_array(self.silhouette_program, [(self._buffers[0], "3f", "in_position")])
        self.mesh = mesh
        lo, hi = mesh.positions.min(axis=0), mesh.positions.max(axis=0)
        self.program["light_position"].value = tuple(float(v) for v in ((lo + hi) / 2 + [0.0, 0.0, (hi[2] - lo[2]) * 0.4]))

    def _framebuffers_for(self, width: int, height: int):
        key = (width, height)
        if key not in self._framebuffers:
            color = self.ctx.texture(key, 4)
            color.filter = (moderngl_filter := self.moderngl.LINEAR, moderngl_filter)
            color.repeat_x = color.repeat_y = False
            ids = self.ctx.texture(key, 1, dtype="i4")
            ids.filter = (self.moderngl.NEAREST, self.moderngl.NEAREST)
            ids.repeat_x = ids.repeat_y = False
            exact = self.ctx.framebuffer([color, self.ctx.renderbuffer(key, 1, dtype="f4"), ids], self.ctx.depth_renderbuffer(key))
            antialiased = self.ctx.framebuffer([self.ctx.renderbuffer(key, 4)])
            silhouette = self.ctx.framebuffer(depth_attachment=self.ctx.depth_renderbuffer(key))
            self._framebuffers[key] = (exact, (color, ids), antialiased, silhouette)
        return self._framebuffers[key]

    def _set_camera(self, program, intrinsics: Intrinsics, cam_to_world: np.ndarray) -> None:
        view = GL_FROM_OPENCV @ invert_rigid(cam_to_world)
        # moderngl takes matrices column-major: pass the transpose's bytes
        program["view"].write(view.T.astype("f4").tobytes())
        program["projection"].write(opengl_projection(intrinsics).T.astype("f4").tobytes())
        if "eye" in program:
            program["eye"].value = tuple(float(v) for v in cam_to_world[:3, 3])

    @_with_context
    def render(self, intrinsics: Intrinsics, cam_to_world) -> RenderOutput:
        if self._vao is None:
            raise RuntimeError("Renderer.set_mesh() must be called before render()")
        width, height = intrinsics.width, intrinsics.height
        exact, (color, ids_texture), antialiased, _ = self._framebuffers_for(width, height)
        self._set_camera(self.program, intrinsics, np.asarray(cam_to_world, dtype=np.float64))
        self.ctx.enable(self.moderngl.DEPTH_TEST)
        self.ctx.disable(self.moderngl.CULL_FACE)
        self.ctx.depth_func = "<"
        exact.use()
        exact.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)  # also zeroes the depth and id attachments
        self._vao.render(self.moderngl.TRIANGLES)
        depth = np.frombuffer(exact.read(attachment=1, components=1, dtype="f4"), dtype=np.float32)
        ids = np.frombuffer(exact.read(attachment=2, components=1, dtype="i4"), dtype=np.int32)
        if self.antialias:
            antialiased.use()
            self.ctx.disable(self.moderngl.DEPTH_TEST)
            color.use(location=0)
            ids_texture.use(location=1)
            self.antialias_program["texel"].value = (1.0 / width, 1.0 / height)
            self._antialias_vao.render(self.moderngl.TRIANGLES, vertices=3)
            rgba_bytes = antialiased.read(components=4)
        else:
            rgba_bytes = exact.read(attachment=0, components=4)  # RGBA reads skip llvmpipe's slow RGB repacking
        rgba = np.frombuffer(rgba_bytes, dtype=np.uint8).reshape(height, width, 4)
        return RenderOutput(rgb=rgba[..., :3], depth=depth.reshape(height, width), instance_ids=ids.reshape(height, width))

    @_with_context
    def unoccluded_pixels(self, intrinsics: Intrinsics, cam_to_world, instance_ids) -> dict[int, int]:
        """Pixels each instance would cover in the image if drawn alone (for `visible_frac`).

        The object is drawn once to fill a cleared depth buffer, then again with depth test `<=` inside a
        samples-passed query, so every covered pixel counts exactly once however many faces overlap it.
        """
        width, height = intrinsics.width, intrinsics.height
        *_, silhouette = self._framebuffers_for(width, height)
        self._set_camera(self.silhouette_program, intrinsics, np.asarray(cam_to_world, dtype=np.float64))
        self.ctx.enable(self.moderngl.DEPTH_TEST)
        silhouette.use()
        counts: dict[int, int] = {}
        for instance_id in instance_ids:
            first, count = self.mesh.ranges[instance_id]
            silhouette.clear(depth=1.0)
            self.ctx.depth_func = "<"
            self._silhouette_vao.render(self.moderngl.TRIANGLES, vertices=count, first=first)
            self.ctx.depth_func = "<="
            with self._query:
                self._silhouette_vao.render(self.moderngl.TRIANGLES, vertices=count, first=first)
            counts[instance_id] = self._query.samples
        self.ctx.depth_func = "<"
        return counts

    def release(self) -> None:
        self.ctx.release()
