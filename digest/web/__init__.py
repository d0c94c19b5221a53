"""The web pages: the Starlette app, its guard, the subscription pages and the archive."""

from digest.web.app import WebContext, create_app, text_on

__all__ = ["WebContext", "create_app", "text_on"]
