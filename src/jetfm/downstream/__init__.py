"""Downstream benchmarks on pre-trained backbones."""
