"""Emails: text shaping, templates (MJML compiled once), rendering, MIME bytes, DKIM, preview."""

__all__: list[str] = []  # a namespace: import the modules themselves
