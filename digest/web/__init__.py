"""The web pages: the Starlette app, its guard, the subscription pages and the archive."""

from digest.web.app import create_app, text_on
from digest.web.context import WebContext

__all__ = ["WebContext", "create_app", "text_on"]
