"""`brender`: the command-line client for pipelines and scripts (submit, download)."""
