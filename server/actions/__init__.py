"""The API's item × action handlers. `routes()` is the dispatcher's whole table: every route
is listed in its module's `ROUTES`, and `brender-server` installs them (`api.install`)."""

from brender.server.actions import farm_items, hierarchy_items, job_items
from brender.server.api import Routes


def routes() -> Routes:
    return {**hierarchy_items.ROUTES, **job_items.ROUTES, **farm_items.ROUTES}
