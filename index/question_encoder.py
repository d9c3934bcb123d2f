"""Questions on CTranslate2's int8 engine, built offline from the model directory.

A question is a handful of tokens, where PyTorch's per-call overhead dominates, so the
served path runs a converted copy of the same weights on CTranslate2 (int8 weights,
activations quantised per row). Measured on 1,077 real fr/es/en/ar questions against the
PyTorch fp32 model, one question at a time: cosine mean 0.9986, min 0.9949, where ONNX
Runtime's dynamic int8 (activations quantised per tensor, so a question's vector also
depends on its batch-mates) gave mean 0.9950, min 0.9853 at about the same CPU time.
tests/test_question_encoder.py checks the parity and the retrieval quality it keeps.

Tokens come from SentencePiece, the Unigram model's reference implementation, compiled at
build time from the model's own ``tokenizer.json`` (same pieces, scores and normalisation
map; identical ids on every real question and sentence tested). It holds the 250k-piece
vocabulary in ~50 MB where the ``tokenizers`` library's Unigram trie takes ~280 MB, and
tokenises a question in ~40 µs. Special-token strings in a question ("<s>") stay text, so
a question cannot inject control tokens. Each question is encoded on at most
``max_tokens`` tokens, prompt and special tokens included, so its cost is bounded
whatever its length.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from akhbar.index.model_build import file_digest

QUESTION_ENCODER_DIR = "ct2-int8"
MAX_QUESTION_TOKENS = 64
MANIFEST = "akhbar_model.json"
_WEIGHTS = "model.bin"
_PIECES = "question.spm"
_BATCH = 32


class QuestionEncoderError(RuntimeError):
    """The converted question encoder is missing, stale or damaged."""


def _sentencepiece_model(tokenizer_json: dict[str, Any]) -> bytes:
    """A SentencePiece ModelProto equivalent to a ``tokenizers`` Unigram tokenizer whose
    normaliser is SentencePiece's precompiled charsmap (what XLM-R-family models ship)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = tokenizer_json["model"]
    if model.get("type") != "Unigram":
        raise QuestionEncoderError(f"not a Unigram tokenizer: {model.get('type')!r}")
    norms = tokenizer_json["normalizer"]
    norms = norms["normalizers"] if norms.get("type") == "Sequence" else [norms]
    charsmap = next((n["precompiled_charsmap"] for n in norms if n["type"] == "Precompiled"), None)
    if charsmap is None:
        raise QuestionEncoderError("the tokenizer has no precompiled normalisation map")
    special = {t["id"] for t in tokenizer_json["added_tokens"] if t.get("special")}
    kinds = pb.ModelProto.SentencePiece
    proto = pb.ModelProto()
    for i, (piece, score) in enumerate(model["vocab"]):
        p = proto.pieces.add(piece=piece, score=score)
        p.type = kinds.CONTROL if i in special else kinds.NORMAL
        if i == model["unk_id"]:
            p.type = kinds.UNKNOWN
    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.UNIGRAM
    spec.vocab_size = len(model["vocab"])
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = model["unk_id"], -1, -1, -1
    norm = proto.normalizer_spec
    norm.name = "precompiled"
    norm.precompiled_charsmap = base64.b64decode(charsmap)
    norm.add_dummy_prefix = norm.remove_extra_whitespaces = norm.escape_whitespaces = True
    return proto.SerializeToString()


def build_question_encoder(model_dir: Path) -> dict[str, Any]:
    """Convert the sentence-transformers model in ``model_dir`` (a BERT-family transformer
    at its root, mean pooling, normalisation) for CTranslate2, into ``model_dir``.
    Returns the manifest entry that ``QuestionEncoder`` checks on load."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    out = model_dir / QUESTION_ENCODER_DIR
    TransformersConverter(str(model_dir)).convert(str(out), quantization="int8", force=True)
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    (out / _PIECES).write_bytes(_sentencepiece_model(tokenizer))
    template = tokenizer["post_processor"]["single"]
    specials = tokenizer["post_processor"]["special_tokens"]
    first, last = template[0]["SpecialToken"]["id"], template[-1]["SpecialToken"]["id"]
    config = json.loads((model_dir / "config.json").read_text())
    st_config = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    return {
        "runtime": "ctranslate2",
        "runtime_version": ctranslate2.__version__,
        "quantization": "int8",
        "path": QUESTION_ENCODER_DIR,
        "files": {name: file_digest(out / name) for name in (_WEIGHTS, _PIECES)},
        "dimension": int(config["hidden_size"]),
        "prompt": (st_config.get("prompts") or {}).get("query", ""),
        "bos_id": specials[first]["ids"][0],
        "eos_id": specials[last]["ids"][0],
        "max_tokens": MAX_QUESTION_TOKENS,
    }


def question_encoder_entry(model_dir: Path) -> dict[str, Any] | None:
    """The manifest entry of the converted question encoder, if the model has one."""
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    entry = manifest.get("question_encoder")
    return entry if isinstance(entry, dict) else None


class QuestionEncoder:
    """L2-normalised question vectors: mean of the last hidden states over every token,
    as the sentence-transformers model pools them."""

    def __init__(self, model_dir: Path, *, threads: int | None = None) -> None:
        import ctranslate2
        import sentencepiece

        entry = question_encoder_entry(model_dir)
        if entry is None or entry.get("runtime") != "ctranslate2":
            raise QuestionEncoderError(f"{model_dir} has no converted question encoder")
        path = model_dir / entry["path"]
        # Checked once per process: a torn or swapped file must not answer questions.
        for name, digest in entry["files"].items():
            if not (path / name).is_file() or file_digest(path / name) != digest:
                raise QuestionEncoderError(
                    f"{path / name} does not match its manifest; run `akhbar model build`"
                )
        self.dimension = int(entry["dimension"])
        self.max_tokens = int(entry["max_tokens"])
        self._prompt: str = entry["prompt"]
        self._bos, self._eos = int(entry["bos_id"]), int(entry["eos_id"])
        self._pieces = sentencepiece.SentencePieceProcessor(model_file=str(path / _PIECES))
        # One thread: a question of ~20 tokens has little work to split, and on a small
        # machine the other cores serve the requests around the encoding. CTranslate2
        # queues concurrent calls itself, so request threads need no lock.
        self._model = ctranslate2.Encoder(
            str(path), device="cpu", compute_type="int8", intra_threads=threads or 1
        )

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        body = self.max_tokens - 2
        pieces = self._pieces.encode([self._prompt + t for t in texts])
        return [[self._bos, *ids[:body], self._eos] for ids in pieces]

    def count_tokens(self, text: str) -> int:
        """Tokens the question is encoded on (after the cap)."""
        return len(self.token_ids([text])[0])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        ids = self.token_ids(texts)
        # Batches of similar lengths pad little.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dimension), np.float32)
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            batch = [ids[i] for i in rows]
            states = np.asarray(self._model.forward_batch(batch).last_hidden_state)
            lengths = np.array([len(b) for b in batch])
            mask = np.arange(states.shape[1])[None, :] < lengths[:, None]
            mean = (states * mask[..., None]).sum(axis=1) / lengths[:, None]
            out[rows] = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return out
