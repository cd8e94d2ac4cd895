"""Visual distractions for DeepMind Control: colors, camera, video backgrounds."""
