"""Object detectors: backbone features, a neck, box and class heads, anchors, and post-processing."""
