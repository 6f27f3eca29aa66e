"""The bounded JSON loader every serving front parses requests with (src/serving_contract.py: load_json).

GIVEN JSON nested to a known depth (random documents whose strings hold brackets, quotes and
backslashes, flat payloads, unbalanced text) WHEN the loader or its depth check reads it THEN text nesting
deeper than the limit is refused with JsonTooDeep (a ValueError, 400 at every front) and everything
else parses as json.loads parses it; the Lambda handler answers 400 to an event that is not an object.
"""

from __future__ import annotations

import json
import random

import pytest

from src.serving_contract import MAX_JSON_DEPTH, JsonTooDeep, json_depth_exceeds, load_json
from tests.conftest import imported_src_modules


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def document(rng: random.Random, levels: int, budget: list[int]):
    """A document exactly `levels` deep, its scalars and keys full of brackets, quotes and backslashes."""
    scalars = [1, -2.5e3, "x[", "]}", '\\"[', "{\\\\", "\u00e9[", True, None]
    if levels == 0:
        return rng.choice(scalars)
    budget[0] -= 1
    children = [document(rng, levels - 1, budget)]
    children += [document(rng, rng.randint(0, min(levels - 1, 2)), budget) if budget[0] > 0 else 1
                 for _ in range(rng.randint(0, 2))]
    rng.shuffle(children)
    if rng.random() < 0.5:
        return children
    return {f"k{i}{rng.choice(scalars)}": child for i, child in enumerate(children)}


@pytest.mark.parametrize("seed", range(4))
def test_the_depth_check_agrees_with_the_parsed_depth(seed):
    rng = random.Random(seed)
    for _ in range(40):
        doc = document(rng, rng.randint(1, 2 * MAX_JSON_DEPTH), [200])
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
        too_deep = depth(doc) > MAX_JSON_DEPTH
        assert json_depth_exceeds(text) is too_deep, (depth(doc), text[:200])
        assert json_depth_exceeds(text.encode("utf-8")) is too_deep
        assert json_depth_exceeds(text.encode("utf-16")) is too_deep
        assert json_depth_exceeds(json.dumps([doc] * 30)) is (depth(doc) + 1 > MAX_JSON_DEPTH)


def test_the_limit_is_exact_for_arrays_objects_and_rows():
    for levels, ok in ((MAX_JSON_DEPTH, True), (MAX_JSON_DEPTH + 1, False)):
        assert json_depth_exceeds("[" * levels + "]" * levels) is not ok
        assert json_depth_exceeds('{"a":' * levels + "1" + "}" * levels) is not ok
        assert json_depth_exceeds("[1," * levels + "1" + "]" * levels) is not ok
        row_among_rows = "[" + "[1,2]," * 500 + "[" * (levels - 1) + "3" + "]" * levels
        assert json_depth_exceeds(row_among_rows) is not ok
    assert not json_depth_exceeds(json.dumps({"instances": [[0.5] * 10] * 10_000}))
    assert not json_depth_exceeds(json.dumps([{"a": "[" * 500, "b": "]" * 3}] * 100))


def test_ten_thousand_levels_are_refused_and_the_rest_parses_as_json_loads_does():
    for text in ("[" * 10_000 + "]" * 10_000, "[1," * 10_000 + "1" + "]" * 10_000, "[" * 10_000,
                 '{"a":' * 10_000 + "0" + "}" * 10_000, b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(JsonTooDeep, match=f"nest deeper than {MAX_JSON_DEPTH} levels"):
            load_json(text)
    for text in ('{"instances": [[1, 2.5], [3, 4]]}', b'[1, "]", {"k[": null}]', "3", '"[[["'):
        assert load_json(text) == json.loads(text)
    with pytest.raises(ValueError) as malformed:
        load_json("[1, 2")
    assert not isinstance(malformed.value, JsonTooDeep)


def test_the_parsers_own_recursion_limit_is_a_json_too_deep_too():
    """With the check out of the way (a limit above the parser's), RecursionError still becomes JsonTooDeep."""
    with pytest.raises(JsonTooDeep):
        load_json("[" * 100_000 + "]" * 100_000, max_depth=10**9)


@pytest.mark.parametrize("event, kind", [([1, 2], "array"), ("text", "string"), (7, "number"), (None, "null"),
                                         (True, "boolean")])
def test_a_lambda_event_that_is_not_an_object_is_a_400(event, kind):
    with imported_src_modules(("lambda_function",)) as src:
        response = src.lambda_function.handle(event, model=None)
    body = json.loads(response["body"])
    assert (response["statusCode"], body["error"]) == (400, "bad_request")
    assert f"the event is a JSON {kind};" in body["message"]
