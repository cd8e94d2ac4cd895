"""Supervised task modules on the sparse core (planned; see docs/roadmap.md)."""
