"""Themes and ranking: group papers by theme, label the groups, order by trending score.

Light on purpose: numpy loads only when ``digest.themes.grouping`` (or relevance) is
imported, so ranking and the taxonomy stay cheap for commands that only send; scikit-learn
is needed only to build the shipped spaces (bench/).
"""

__all__: list[str] = []  # a namespace: import the modules themselves
