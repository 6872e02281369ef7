"""vst: Visual Spatial Tuning - 3D scenes to spatial data to trained vision-language models."""

__version__ = "0.1.0"
