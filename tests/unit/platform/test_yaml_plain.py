"""The fast YAML loader gives exactly what PyYAML's safe loader gives, or its error.

Users' rollout, fleet and policy files are YAML 1.1 as PyYAML reads it (``yes``
is true, ``010`` is octal); the fast constructor must not change one value, and
everything it does not handle itself must reach PyYAML's constructor.
"""

import datetime
import gc
import math

import pytest
import yaml

from edgeloop.core import yaml_plain
from edgeloop.core.errors import UsageError
from edgeloop.core.yaml_files import read_yaml

SAME_AS_PYYAML = {
    "plain mapping": "a: 1\nb: two\nc: [1, 2.5, 'x']\n",
    "yaml 1.1 booleans": "flags: [yes, no, on, off, y, n, True, FALSE, 'yes']\n",
    "numbers": "n: [010, 0o10, 0x1f, 1_000, '1_000', 190:20:30, -.inf, .NaN, 1e3, 6.8523015e+5]\n",
    "nulls": "a: ~\nb: null\nc:\nd: 'null'\n",
    "timestamps": "d: 2026-12-01\nt: 2026-12-01T16:00:00Z\nu: 2026-12-01 16:00:00.5 +02:00\n",
    "binary": "b: !!binary aGVsbG8=\n",
    "explicit str": "v: !!str 3\nw: !!int '7'\nx: !!float '1'\n",
    "non-string keys": "1: one\n2.5: float\ntrue: bool\n~: none\n2026-12-01: day\n",
    "nested": "nodes:\n  - node: gw-1\n    labels: {site: s1, region: '0'}\n    p99_ms: 3.2\n",
    "alias shared": "base: &b {site: s1}\nx: *b\ny: *b\n",
    "merge key": "base: &b {site: s1, region: r}\nnode: {<<: *b, site: s2}\n",
    "set": "s: !!set {a, b}\n",
    "omap": "o: !!omap [{a: 1}, {b: 2}]\n",
    "pairs": "p: !!pairs [{a: 1}, {a: 2}]\n",
    "value key": "m: {=: 1, other: 2}\n",
    "tuple-like keys in scalars": "? a\n: 1\n",
    "empty": "",
    "only a comment": "# nothing\n",
    "a scalar document": "just text\n",
    "a list document": "- 1\n- a\n",
    "unicode": "name: pompe-é\nemoji: '🛢'\n",
    "repeated scalars": "l: [1, 1, 1.0, 1.0, yes, yes, '1', '1']\n",
}


def _same(got, expected):
    """Equal, with NaN equal to NaN and types kept (1 vs 1.0 vs True)."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(expected, dict):
        return (
            type(got) is dict
            and list(got) == list(expected)
            and all(_same(got[k], expected[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            type(got) is list
            and len(got) == len(expected)
            and all(_same(g, e) for g, e in zip(got, expected, strict=True))
        )
    return type(got) is type(expected) and got == expected


@pytest.mark.parametrize("text", SAME_AS_PYYAML.values(), ids=SAME_AS_PYYAML.keys())
def test_the_result_is_pyyamls(text):
    expected = yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506
    assert _same(yaml_plain.load(text), expected)


def test_the_fast_path_builds_plain_documents_itself(monkeypatch):
    """A plain document never reaches PyYAML's constructor; an alias does."""
    calls = []
    general = yaml.CSafeLoader.construct_document

    def counted(self, node):
        calls.append(node)
        return general(self, node)

    monkeypatch.setattr(yaml.CSafeLoader, "construct_document", counted)
    yaml_plain.load(SAME_AS_PYYAML["nested"])
    assert calls == []
    loaded = yaml_plain.load(SAME_AS_PYYAML["alias shared"])
    assert len(calls) == 1
    assert loaded["x"] is loaded["y"]  # PyYAML's identity for an alias


def test_a_recursive_alias_is_built_as_pyyaml_builds_it():
    loaded = yaml_plain.load("a: &a [1, *a]\n")
    assert loaded["a"][1] is loaded["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "expected ',' or ']'"),
        ("{[1, 2]: x}\n", "found unhashable key"),
        ("a: !!int notanumber\n", "invalid literal for int"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("a: *missing\n", "found undefined alias"),
    ],
)
def test_bad_documents_get_pyyamls_error(text, message):
    with pytest.raises(Exception, match=message) as caught:
        yaml_plain.load(text)
    with pytest.raises(type(caught.value)):
        yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506


def test_the_collector_is_restored():
    yaml_plain.load("a: 1\n")
    assert gc.isenabled()
    gc.disable()
    try:
        yaml_plain.load("a: 1\n")
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(yaml.YAMLError):
        yaml_plain.load("a: [1\n")
    assert gc.isenabled()


def test_read_yaml_uses_it_and_keeps_one_line_errors(tmp_path):
    path = tmp_path / "rollout.yaml"
    path.write_text("when: 2026-12-01\nenabled: yes\nsites: [a, b]\n")
    assert read_yaml(path, "rollout") == {
        "when": datetime.date(2026, 12, 1),
        "enabled": True,
        "sites": ["a", "b"],
    }
    path.write_text("sites: {[1]: x}\n")
    with pytest.raises(
        UsageError, match=r"rollout.yaml: not valid YAML \(.*unhashable key"
    ) as caught:
        read_yaml(path, "rollout")
    assert "\n" not in str(caught.value)
