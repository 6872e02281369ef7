"""Vision-language-action: a (spatially tuned) Qwen2.5-VL turned into a robot policy, trained and evaluated on LIBERO.

The layer above evaluation (DESIGN.md): `actions` (quantile normalisation and OpenVLA/VST's 256-bin action tokens,
optionally chunked), `data` (episodes: LIBERO HDF5 and LeRobot v3 readers, the HDF5 writer, episodes -> Samples),
`libero` (environments with VST's evaluation protocol), `expert` (a scripted LIBERO-Spatial expert), `collect`
(`vst vla collect`), `train` (`vst train vla`, the SFT trainer), `policy` (`predict_action`, in process or over HTTP)
and `evaluate` (`vst vla eval`: closed loop, parallel environments, videos, success with a 95 % interval).
Recipe and references: spec vla.md, docs/vla.md.
"""
