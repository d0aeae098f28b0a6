"""Datasets, architectures, shift sets, training and evaluation recipes, and matrix presets."""
