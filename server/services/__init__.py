"""The services layer: plain functions over the models, called by the one dispatcher."""
