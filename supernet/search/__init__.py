"""Differentiable (gradient-based) architecture search."""
