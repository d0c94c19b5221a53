"""Render + build cost per email: prepare once per Selection and splice, vs rendering each email.

Run by hand: python bench/bench_render.py [subscribers] [selections]
Baseline (same run): Jinja render of the compiled template per subscriber plus
email.message.EmailMessage(policy=SMTP) to build the bytes, as a straightforward sender would.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from digest.config import load_settings
from digest.mail.mime import Slots
from digest.mail.render import Renderer
from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.sources.jsonfile import load_papers
from digest.themes.rank import full_selection

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def papers() -> list[Paper]:
    """The 29 real papers of the recorded HF daily list, read by digest's own file source."""
    return load_papers(FIXTURES / "hf_daily_papers_2024-10-25.json").papers


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    base = papers()
    themes = tuple(Theme(f"Theme {t}", tuple(base[t::6])) for t in range(6))
    edition = Edition("daily-2026-11-26", Frequency.DAILY, date(2026, 11, 26), themes)
    settings = load_settings(
        secret_key="bench-secret-0123456789-abcdefghijklmnop",
        base_url="https://digest.example.org",
        sender="digest <digest@example.org>",
    )
    renderer = Renderer(settings)
    # k distinct selections: 30, 29, ... papers.
    selections = [full_selection(edition, 30 - i) for i in range(k)]
    subscribers = [Subscriber(email=f"user{i}@example.org", id=i + 1) for i in range(n)]

    start = time.perf_counter()
    prepared = [renderer.prepare_digest(edition, s) for s in selections]
    size = 0
    for i, sub in enumerate(subscribers):
        size += len(prepared[i % k].for_subscriber(sub).raw)
    ours = (time.perf_counter() - start) / n

    # Baseline on a sample: render per email and build with EmailMessage(policy=SMTP).
    sample = subscribers[: max(200, n // 40)]
    start = time.perf_counter()
    for i, sub in enumerate(sample):
        sel = selections[i % k]
        unsub, prefs = renderer.links(sub)
        ctx = renderer.digest_context(edition, sel, Slots.new())
        ctx.update(unsubscribe_url=unsub, preferences_url=prefs)
        html = renderer.templates.render("html", "digest.mjml", ctx)
        text = renderer.templates.render("text", "digest.txt", ctx)
        msg = EmailMessage(policy=SMTP)
        msg["From"], msg["To"] = settings.sender, sub.email
        msg["Subject"] = renderer.subject(edition, sel.count)
        msg["List-Unsubscribe"] = f"<{unsub}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        msg.as_bytes()
    baseline = (time.perf_counter() - start) / len(sample)
    assert "DIGEST-SLOT" not in html

    print(f"{n} subscribers, {k} distinct selections, {size / n / 1024:.1f} KiB per message")
    print(f"prepare once + splice : {ours * 1e3:.3f} ms per email (render + build)")
    print(f"render per email      : {baseline * 1e3:.3f} ms per email ({len(sample)} sampled)")
    print(f"ratio                 : {baseline / ours:.1f}x faster")


if __name__ == "__main__":
    main()
