"""An autograded assignment: its checks, each written once, run the same way everywhere.

A check is a plain function of the student's models, registered under the grade_id of the test
cell it decides:

    lesson = Assignment("session07_residual_cnn", notebook="residual_cnn",
                        answer_cells=("residual_block", "residual_cnn"), preamble="import torch...")

    @lesson.check("block_skip_connection", builds=[Build("ResidualBlock", (8,), (2, 8, 10, 10))],
                  hint="Add the block's own input before the last ReLU.")
    def block_skip_connection(models, rng):
        block = models["ResidualBlock(8)"]          # rebuilt by the grader, its weights drawn here
        x = normal(rng, 2, 8, 10, 10)               # drawn here, never seen by the student's code
        assert torch.allclose(block(x), reference(block, x)), "the block does not add x back"

The same function decides the grade in both places it runs:
* in the instructor's notebook, the test cell's hidden part is `lesson.verify("grade_id",
  globals())`: the notebook's own classes are exported and rebuilt exactly as a submission's
  are, and the check runs on them, so nbval proves the solution passes the check that grades;
* in grading (autograder/trusted.py), the student's classes are exported in a sandbox
  (autograder/sandbox_runtime/exporting.py) and the checks run in a separate process that no
  student code ever ran in (autograder/check_worker.py).

A check fails with `assert condition, "what is wrong"`; the message (ours, never the student's)
and the hint become the feedback.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import sys
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import autograder.graphs
import autograder.policy
import deepnets.training
from autograder.graphs import BadGraph, GraphModel
from autograder.secret import grader_secret
from autograder.sandbox_runtime.exporting import build as build_model, describe_error, export_model

CODE_THE_RESULT_DEPENDS_ON = (__file__, autograder.graphs.__file__, autograder.policy.__file__,
                              deepnets.training.__file__)

if not __debug__:
    raise RuntimeError("the checks are asserts: run the grader without python -O")


@dataclasses.dataclass(frozen=True)
class Build:
    """A model a check needs: `cls(*args)` from the student's namespace, exported on an input of shape `example`."""

    cls: str
    args: tuple = ()
    example: tuple = (2, 1, 28, 28)

    @property
    def key(self) -> str:
        return f"{self.cls}({', '.join(repr(a) for a in self.args)})"

    def spec(self) -> dict:
        return {"key": self.key, "class": self.cls, "args": list(self.args), "example": list(self.example)}


@dataclasses.dataclass
class Check:
    grade_id: str
    function: Callable
    hint: str
    builds: tuple
    timeout: int          # seconds for the check itself on the grader's CPU (one thread)
    # A check that needs no secret (training on the grader's data from the grader's weights)
    # runs with one fixed seed: its result is then a function of the models alone, and is
    # kept by their hash, so the same network is trained once however many students submit it.
    by_model: bool = False


class NotBuilt(Exception):
    """A model a check needs could not be built or exported in the student's process."""


class Models:
    """What a check reads the student's models from: `models["ResidualBlock(8)"]` is a fresh
    GraphModel with weights drawn from the check's own random stream."""

    def __init__(self, blobs: dict, rng: np.random.Generator):
        self._blobs, self._rng = blobs, rng

    def __getitem__(self, key: str) -> GraphModel:
        blob = self._blobs.get(key)
        if isinstance(blob, bytes):
            return GraphModel.from_bytes(blob, seed=int(self._rng.integers(2**31)))
        raise NotBuilt(f"building {key} failed: {blob or 'it was not exported'}")


def skips_in(models: Models, builds) -> int:
    """The most skip connections any of `builds` runs (GraphModel.skip_connections); 0 for one
    that could not be built. The network checks read from it whether the student's block has its skip."""
    found = 0
    for build in builds:
        try:
            found = max(found, models[build.key].skip_connections())
        except NotBuilt:
            pass
    return found


def course_secret_seed(purpose: str) -> int:
    """A seed only this course's grader knows (autograder/secret.py), the same for every student."""
    digest = hashlib.sha256(f"{grader_secret()}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def normal(rng: np.random.Generator, *shape, requires_grad: bool = False) -> torch.Tensor:
    """Standard-normal float32 inputs drawn from the check's random stream."""
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    return x.requires_grad_(requires_grad)


def uniform(rng: np.random.Generator, *shape) -> torch.Tensor:
    return torch.from_numpy(rng.random(shape, dtype=np.float32))


class Assignment:
    """The checks of one assignment and what they need from the student's notebook."""

    def __init__(self, name: str, *, notebook: str, answer_cells: tuple, preamble: str,
                 cell_timeout: int = 60, build_timeout: int = 20):
        self.name, self.notebook = name, notebook
        self.build_timeout = build_timeout    # seconds to build and export one model (correct ones: 1-3)
        self.answer_cells, self.preamble, self.cell_timeout = tuple(answer_cells), preamble, cell_timeout
        self.checks: dict[str, Check] = {}
        self._exported: dict[tuple, bytes | str] = {}     # verify's exports, by build and class object

    def check(self, grade_id: str, *, hint: str, builds=(), timeout: int = 20, by_model: bool = False):
        def register(function):
            if grade_id in self.checks:
                raise ValueError(f"two checks decide {grade_id}")
            self.checks[grade_id] = Check(grade_id, function, hint, tuple(builds), timeout, by_model)
            return function
        return register

    def builds(self, grade_ids=None) -> list[Build]:
        """Every model the checks (or those of `grade_ids`) need, each once."""
        found = {}
        for check in self.checks.values():
            if grade_ids is None or check.grade_id in grade_ids:
                for build in check.builds:
                    found.setdefault(build.key, build)
        return list(found.values())

    def run(self, grade_id: str, blobs: dict, seed: int, *, cache: str | None = None) -> tuple[bool, str]:
        """(passed, message) of one check on exported models; the seed draws its inputs and weights.

        `cache`: a folder where by_model checks keep their results (a miss is computed).
        """
        check = self.checks[grade_id]
        key = self._model_key(check, blobs) if check.by_model and cache else None
        if check.by_model:
            seed = 0
        if not key:
            return self._run(check, blobs, seed)
        Path(cache).mkdir(parents=True, exist_ok=True)
        # One computation per model at a time: a second process asking for the same model (two
        # workers grading identical networks, a notebook's hidden test next to the class run)
        # waits for the first one's result instead of training it again beside it.
        with open(Path(cache) / f".{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                cached = json.loads((Path(cache) / f"{key}.json").read_text())
                return bool(cached["passed"]), str(cached["message"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            passed, message = self._run(check, blobs, seed)
            temporary = Path(cache) / f".{key}.{os.getpid()}.tmp"
            temporary.write_text(json.dumps({"passed": passed, "message": message}))
            os.replace(temporary, Path(cache) / f"{key}.json")
        return passed, message

    def _model_key(self, check: Check, blobs: dict) -> str | None:
        """The hash of everything a by_model check's result depends on (None: a build failed)."""
        models = [blobs.get(build.key) for build in check.builds]
        if not all(isinstance(blob, bytes) for blob in models):
            return None
        digest = hashlib.sha256(f"{self.name}:{check.grade_id}".encode())
        digest.update(hashlib.sha256(grader_secret().encode()).digest())
        for path in CODE_THE_RESULT_DEPENDS_ON + (sys.modules[check.function.__module__].__file__,):
            digest.update(Path(path).read_bytes())
        for blob in models:
            digest.update(hashlib.sha256(blob).digest())
        return digest.hexdigest()

    def _run(self, check: Check, blobs: dict, seed: int) -> tuple[bool, str]:
        rng = np.random.default_rng([seed, zlib.crc32(check.grade_id.encode())])
        try:
            check.function(Models(blobs, rng), rng)
        except AssertionError as error:
            return False, str(error) or "the check failed"
        except NotBuilt as error:
            return False, f"not checked: {error}"
        except BadGraph as error:
            return False, str(error)
        except Exception as error:  # noqa: BLE001 (the rebuilt model failed on our inputs)
            return False, f"your model raised {type(error).__name__} on the grader's inputs"
        return True, ""

    # -- in the instructor's notebook ---------------------------------------------------------
    def verify(self, grade_id: str, namespace: dict, seed: int = 0) -> None:
        """The hidden test of `grade_id`: the grading check, on this notebook's own classes.

        Raises AssertionError (with the check's message) exactly when grading would fail it.
        """
        blobs = {}
        for build in self.checks[grade_id].builds:
            # One export per class object: rerunning the answer cell defines a new class
            # (for "ResNet18._make_layer", the class ResNet18).
            cache_key = (build.key, id(namespace.get(build.cls.partition(".")[0])))
            if cache_key not in self._exported:
                try:
                    model, example = build_model(namespace, build.spec())
                    self._exported[cache_key] = export_model(model, example)
                except Exception as error:  # noqa: BLE001
                    self._exported[cache_key] = describe_error(error)
            blobs[build.key] = self._exported[cache_key]
        # Where the grader keeps by_model results (tests and graders set it): a model the class
        # run already trained is not trained again here, and the other way round.
        from autograder.trusted import MODEL_CACHE_VARIABLE

        passed, message = self.run(grade_id, blobs, seed, cache=os.environ.get(MODEL_CACHE_VARIABLE))
        assert passed, f"{message}. Hint: {self.checks[grade_id].hint}"
