"""Sparse networks for SB3: the policies, their settings, ANF, and the thin algorithm classes."""
