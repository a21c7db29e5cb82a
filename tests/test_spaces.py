"""Search spaces as values: JSON round trips, validation, token API."""

import json

import jax
import pytest

from supernet import UserError
from supernet.spaces import (
  DARTS_V2,
  DartsSpace,
  Nb201Arch,
  Nb201Space,
  arch_from_json,
  load_arch,
  save_arch,
)
from supernet.spaces.darts import PUBLISHED_GENOTYPES


@pytest.mark.parametrize("space", [DartsSpace(), Nb201Space()])
def test_sample_encode_decode_round_trip(space):
  for arch in space.sample_many(jax.random.key(0), 20):
    assert space.decode(space.encode(arch)) == arch
    assert arch_from_json(json.loads(arch.dumps())) == arch
    assert hash(arch) == hash(arch_from_json(arch.to_json()))
    mutated = space.mutate(jax.random.key(1), arch)
    assert mutated != arch
    space.validate(mutated)


def test_sampling_is_deterministic_from_the_key():
  s = DartsSpace()
  assert s.sample(jax.random.key(5)) == s.sample(jax.random.key(5))
  assert s.sample(jax.random.key(5)) != s.sample(jax.random.key(6))


def test_published_darts_genotypes_load_as_they_are(tmp_path):
  for name, g in PUBLISHED_GENOTYPES.items():
    path = tmp_path / f"{name}.json"
    save_arch(g, path)
    assert load_arch(path, DartsSpace()) == g
  doc = json.loads(DARTS_V2.dumps())
  assert doc["normal"][0] == ["sep_conv_3x3", 0]
  assert doc["normal_concat"] == [2, 3, 4, 5]


def test_nb201_string_is_the_benchmarks():
  cell = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
          "nor_conv_3x3~1|skip_connect~2|")
  arch = Nb201Arch.from_string(cell)
  assert arch.cell == cell
  assert arch.to_json() == {"space": "nb201", "cell": cell}
  assert Nb201Space().size() == 15625
  assert len(list(Nb201Space().enumerate())) == 15625


def _darts_doc(**changes):
  doc = DARTS_V2.to_json()
  doc.update(changes)
  return doc


@pytest.mark.parametrize("doc, message", [
    ({"space": "nasnet"}, "nasnet"),
    (_darts_doc(normal=[["conv_7x7", 0]] + DARTS_V2.to_json()["normal"][1:]),
     "unknown op 'conv_7x7'"),
    (_darts_doc(normal=DARTS_V2.to_json()["normal"][:6]), "has 6 edges"),
    (_darts_doc(normal=DARTS_V2.to_json()["normal"][:7] + [["skip_connect", 9]]),
     "input index 9 out of range"),
    (_darts_doc(reduce_concat=[2, 3]), "reduce_concat"),
    ({"space": "nb201", "cell": "|nor_conv_3x3~0|+|none~0|"}, "expected 3 nodes"),
    ({"space": "nb201", "cell": "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"},
     "'conv' is not one of"),
])
def test_bad_arch_documents_name_the_problem(doc, message):
  with pytest.raises(UserError, match=message.replace("(", r"\(")):
    arch_from_json(doc)


def test_arch_of_another_space_is_refused(tmp_path):
  path = tmp_path / "a.json"
  save_arch(DARTS_V2, path)
  with pytest.raises(UserError, match="space 'darts' but the config's space "
                     "is 'nb201'"):
    load_arch(path, Nb201Space())


def test_truncated_arch_file(tmp_path):
  path = tmp_path / "a.json"
  path.write_text(DARTS_V2.dumps()[:40])
  with pytest.raises(UserError, match="not valid JSON"):
    load_arch(path)
