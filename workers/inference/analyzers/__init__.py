"""Analyzers: person detection, human parsing and image-quality metrics."""
