"""Sweeps: grids of training runs."""
