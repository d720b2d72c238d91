"""Enhancers: the whole frame (Real-ESRGAN, bundled) and each face (GFPGAN-style, provisioned)."""

from pipeline.enhance.face import FaceEnhancer
from pipeline.enhance.frame import FrameEnhancer

__all__ = ["FaceEnhancer", "FrameEnhancer"]
