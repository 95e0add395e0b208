"""The API's item × action handlers; importing this package registers them with the dispatcher."""

from brender.server.actions import farm_items, hierarchy_items, job_items

__all__ = ["farm_items", "hierarchy_items", "job_items"]
