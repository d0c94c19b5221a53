"""``python -m digest.config [--table]``: print `.env.example` (or the README's settings table)."""

import sys

from digest.config.reference import env_example, settings_table

print(settings_table() if "--table" in sys.argv else env_example(), end="")
