"""Emails: text shaping, templates (MJML compiled once), rendering, MIME bytes, DKIM, preview."""
