"""Search over every stored paper: SQLite FTS5 and PostgreSQL full-text give the same papers.

The same papers (the recorded Hugging Face days plus hand-made ones in other scripts, with
hyphens, accents and digits) go into a real SQLite file and a throw-away PostgreSQL database;
every query must find the same ids in the same order on both.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import unicodedata
from datetime import date
from importlib import resources

import pytest
import sqlalchemy as sa
from alembic import command

from digest.models import Edition, EditionStatus, Frequency, Paper, Theme
from digest.sources.jsonfile import from_hf_items
from digest.store import Store, schema
from digest.store.base import _alembic_config
from digest.store.search import fts5_query, search_words, tsquery
from tests.conftest import FIXTURES

EXTRA = [
    Paper("2411.00001", "GPT-4o as a Judge: self-evaluation of LLMs", "We study GPT-4 judges.",
          authors=("Zoë Müller", "José Núñez"), upvotes=7),
    Paper("2411.00002", "Straße und Fluss: Ölmalerei mit Diffusionsmodellen",
          "Ein Diffusionsmodell für Ölbilder.", upvotes=7),
    Paper("2411.00003", "تعلم الآلة العميق للغات", "نموذج لغوي كبير للترجمة", upvotes=3),
    Paper("2411.00004", "大型语言模型 and 3D-LLM reasoning", "Mixture-of-Experts (MoE) at 1e5 steps",
          organization="Ωmega Lab", keywords=("mixture-of-experts",)),
    Paper("2411.00005", "Ἀρχαῖα ἑλληνικά: Ancient Greek NER", "Ἀρχαῖα texts 🚀 and emoji 🤖."),
    Paper("2411.00006", "x" * 60 + " long-word test", "a_b snake_case and CamelCase 2024-10-25"),
]  # fmt: skip
QUERIES = [
    "diffusion", "diffus", "video generation", "LLM", "llms", "gpt-4", "GPT 4o", "zoe", "Zoë",
    "jose nunez", "strasse", "ölmalerei", "olmal", "اللغات", "تعلم", "大型语言模型", "3d llm",
    "mixture of experts", "moe", "1e5", "ωmega", "ἀρχαῖα", "αρχαια", "ner", "🚀", "2024",
    "snake", "camelcase", "agent", "reinforcement learning", "the", "a", "x" * 60, "memory",
    "contrastive loss", "zzzz-nothing",
]  # fmt: skip
HOSTILE = [
    '"', '""', "'", "AND", "OR NOT", "NEAR(a b)", "*", "a*", "-diffusion", "^video", "title:x",
    "(((", ")", "{title}: x", "diffusion OR", "\x00", "<script>", "%", "_", "\\", "a & b | !c",
    "foo:*", "!!", "x" * 10_000, " ",
]  # fmt: skip


def all_papers() -> list[Paper]:
    items = json.loads((FIXTURES / "hf_daily_papers_2024-10-25.json").read_text())
    items += json.loads((FIXTURES / "hf_daily_papers_recent.json").read_text())
    examples = resources.files("digest.examples").joinpath("papers.json").read_text()
    items += json.loads(examples)
    return [*from_hf_items(items, source="hf").papers, *EXTRA]


@pytest.fixture
def filled(any_store: Store) -> Store:
    """A migrated store on SQLite or a throw-away PostgreSQL database, holding all_papers()."""
    any_store.upsert_papers(all_papers())
    return any_store


def _ids(store: Store, query: str, limit: int = 100) -> tuple[int, list[str]]:
    result = store.search_papers(query, limit=limit)
    return result.total, [h.paper.arxiv_id for h in result.hits]


def test_words_are_folded_once_for_both_databases() -> None:
    assert search_words("Élan GPT-4o Straße 3D-LLM a_b") == [
        "elan", "gpt", "4o", "strasse", "3d", "llm", "a", "b",
    ]  # fmt: skip
    assert fts5_query('NEAR("x" y) OR *') == '"near"* "x"* "y"* "or"*'
    assert tsquery("diffusion & robots | !x 42") == "diffusion:* & robots:* & x:* & 42"
    assert fts5_query("GPT-4") == '"gpt"* "4"'
    assert fts5_query('" * ( ^') is None and tsquery("") is None


def test_text_with_a_few_non_ascii_characters_gives_the_words_of_the_general_rule() -> None:
    # Accents and dashes in English text take a faster path: the words must be the ones the
    # general rule (letters and digits of any script, after folding, marks removed) gives.
    def rule(text: str) -> list[str]:
        folded = unicodedata.normalize("NFKD", text.casefold())
        return re.findall(r"[^\W_]+", "".join(c for c in folded if not unicodedata.combining(c)))

    texts = [
        "Naïve Bayes — “quoted” Müller’s café",
        "ℌ\u00a0ﬁnal ① x²",  # compatibility forms: NFKD's "H" keeps its case
        "日本語 models and Σίσυφος",
        "e\u0301te\u0301 a–b " + "x" * 41,
    ]
    for text in texts:
        assert search_words(text) == [w for w in rule(text) if len(w) <= 40], text


def test_the_queries_find_what_a_reader_expects(store: Store) -> None:
    store.upsert_papers(all_papers())
    assert _ids(store, "zoë")[1] == ["2411.00001"]  # accents folded
    assert _ids(store, "jose nunez")[1] == ["2411.00001"]  # every word must match
    assert _ids(store, "strasse")[1] == ["2411.00002"]
    gpt4 = _ids(store, "gpt-4")[1]
    assert "2411.00001" in gpt4 and all("4" in search_words(store.get_paper(i).title + " "
                                                            + store.get_paper(i).abstract)
                                        for i in gpt4)  # fmt: skip
    assert "2411.00004" in _ids(store, "mixture of experts")[1]
    total, ids = _ids(store, "diffus")
    assert total == len(ids) >= 5 and "2411.00002" in ids  # a prefix: diffusion, Diffusionsmodell
    assert _ids(store, "zzzz-nothing") == (0, [])
    upvotes = [store.get_paper(i).upvotes for i in _ids(store, "model")[1]]
    assert upvotes == sorted(upvotes, reverse=True)  # most upvoted first


def test_both_databases_find_the_same_papers(store: Store, pg_url: str) -> None:  # noqa: F811
    postgres = Store(pg_url)
    postgres.migrate()
    for each in (store, postgres):
        each.upsert_papers(all_papers())
    found = 0
    for query in QUERIES + HOSTILE:
        on_sqlite = _ids(store, query)
        assert _ids(postgres, query) == on_sqlite, query
        found += bool(on_sqlite[0])
    assert found >= 30  # most queries find something: equal answers are not all empty
    postgres.close()


def test_query_syntax_from_a_visitor_is_never_an_error(filled: Store) -> None:
    for query in HOSTILE:
        total, ids = _ids(filled, query)
        assert total == len(ids) or total > 100, query


def test_the_index_follows_merges_and_new_papers(filled: Store) -> None:
    paper = all_papers()[-1]
    assert _ids(filled, "camelcase")[1] == [paper.arxiv_id]
    filled.upsert_papers([dataclasses.replace(paper, abstract="Quantised kangaroo gaits.")])
    assert _ids(filled, "camelcase") == (0, [])
    assert _ids(filled, "kangaroo")[1] == [paper.arxiv_id]
    filled.upsert_papers([Paper("2411.09999", "Wombat burrows", "Digging.", upvotes=1)])
    assert _ids(filled, "wombat")[1] == ["2411.09999"]


def test_hits_say_which_published_edition_held_them(filled: Store) -> None:
    papers = all_papers()
    draft = filled.save_edition(Edition("daily-2024-10-24", Frequency.DAILY, date(2024, 10, 24),
                                        (Theme("Drafty", (papers[-2],)),)))  # fmt: skip
    sent = filled.save_edition(Edition("daily-2024-10-25", Frequency.DAILY, date(2024, 10, 25),
                                       (Theme("A", papers[:2]), Theme("Odd", papers[-1:]))))  # fmt: skip
    filled.set_edition_status(sent.id, EditionStatus.SENT)
    assert draft.id != sent.id
    (hit,) = filled.search_papers("camelcase").hits
    assert (hit.edition_key, hit.edition_date, hit.theme, hit.theme_position) == (
        "daily-2024-10-25", date(2024, 10, 25), "Odd", 1,
    )  # fmt: skip
    (in_draft_only,) = filled.search_papers("ἀρχαῖα").hits  # papers[-2]: a draft is not shown
    assert in_draft_only.paper.arxiv_id == papers[-2].arxiv_id
    assert in_draft_only.edition_key is None and in_draft_only.theme is None


def test_postgresql_searches_through_the_gin_index(pg_url: str) -> None:  # noqa: F811
    # The index is on an expression: a search that words it otherwise reads every row.
    store = Store(pg_url)
    store.migrate()
    store.upsert_papers(all_papers())
    sent: list[tuple[str, dict]] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])))
    assert store.search_papers("diffusion").total > 0
    statements = [(sql, params) for sql, params in sent if "tsquery" in sql]
    assert len(statements) == 2  # the count and the page
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for sql, params in statements:
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql, params).scalars())
            assert "Bitmap Index Scan on ix_papers_search" in plan, plan
    store.close()


def test_revision_0008_moves_the_gin_index_to_the_vector_searches_use(pg_url: str) -> None:  # noqa: F811
    # 0008 writes its expression out, as a migration must, so a test holds it to the query's.
    revision = importlib.import_module("digest.store.migrations.versions.0008_search_vector")
    assert revision.VECTOR == schema.SEARCH_VECTOR
    cfg = _alembic_config()
    engine = sa.create_engine(pg_url)

    def index() -> str:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_papers_search'"
            ).scalar_one()

    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    assert "to_tsvector('simple'" in index()
    store = Store(pg_url)
    store.upsert_papers(all_papers())  # stored under 0007's index
    store.migrate()
    assert "array_to_tsvector" in index() and "to_tsvector('simple'" not in index()
    assert store.search_papers("diffusion").total > 0
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert "to_tsvector('simple'" in index()
    store.close()
    engine.dispose()


def test_papers_stored_before_the_search_revision_are_found(db_url: str) -> None:
    cfg = _alembic_config()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO papers (arxiv_id, title, abstract, authors, upvotes, comments, keywords, "
            "categories, sources, first_seen_at, updated_at) VALUES ('2410.00001', 'Old Ibis', "
            "'stored long ago', '[\"Ada Lovelace\"]', 0, 0, '[]', '[]', '[]', "
            "'2024-10-25 00:00:00', '2024-10-25 00:00:00')"
        )
    engine.dispose()
    store = Store(db_url)
    store.migrate()
    assert _ids(store, "ibis lovelace") == (1, ["2410.00001"])
    store.close()
