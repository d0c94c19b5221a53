"""Themes and ranking: group papers by theme, label the groups, order by trending score.

Light on purpose: scikit-learn loads (about 1 s) only when ``digest.themes.grouping`` is
imported, so ranking and the taxonomy stay cheap for commands that only send.
"""

__all__: list[str] = []  # a namespace: import the modules themselves
