"""Labelers: models that answer taxonomy categories about the person in an image."""
