"""Pixel agents: VisualSAC (SAC with shifts, SVEA, MaDi), encoders, the Masker, augmentations."""
