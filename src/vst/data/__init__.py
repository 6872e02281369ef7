"""Spatial data engine: scenes -> VST-P / VST-R samples -> parquet shards. Never imports torch or transformers."""
