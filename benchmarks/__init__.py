"""jaxadv's benchmark suite: speed, memory and attack quality, as ratios measured in one run."""
