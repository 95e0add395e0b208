"""brender's benchmarks: the farm against plain Blender, its peers' figures and its limits.

`python -m bench --list` lists the scenarios; see bench/RESULTS.md for the latest figures.
"""
