"""Tilt-series alignment: coarse cross-correlation, bead tracking, least-squares solve, patch tracking, axis."""
