"""Subscribers, their whole lifecycle: add, import, confirm, pause, resume, remove, delete.

The CLI and the web pages both call these functions; neither touches the store's subscriber
rows on its own.
"""

from digest.subscribers.lifecycle import (
    add,
    can_pause,
    can_resume,
    check_keywords,
    check_max_papers,
    confirmation_for,
    delete,
    email_hash,
    erase,
    known_topics,
    normalize_email,
    parse_frequency,
    pause,
    remove,
    request_subscription,
    resolve_topics,
    resume,
    send_confirmation,
    split_list,
)
from digest.subscribers.reader import (
    ProfileChange,
    change_profile,
    describe_profile,
    profile_fields,
    stored_paper_ids,
)
from digest.subscribers.transfer import ImportReport, export, import_subscribers

__all__ = [
    "ImportReport",
    "ProfileChange",
    "change_profile",
    "describe_profile",
    "profile_fields",
    "stored_paper_ids",
    "add",
    "can_pause",
    "can_resume",
    "check_keywords",
    "check_max_papers",
    "confirmation_for",
    "delete",
    "email_hash",
    "erase",
    "export",
    "import_subscribers",
    "known_topics",
    "normalize_email",
    "parse_frequency",
    "pause",
    "remove",
    "request_subscription",
    "resolve_topics",
    "resume",
    "send_confirmation",
    "split_list",
]
