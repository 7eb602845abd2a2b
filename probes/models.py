"""SeamlessM4T speech-to-text models for probing: tiny, medium-random, or a local snapshot.

- ``tiny``: the real ``SeamlessM4TForSpeechToText`` class from a small config (~0.8 M
  parameters), with a sentencepiece tokenizer trained on the corpus text and the language tokens
  ``__spa__`` ... added; built deterministically from a seed, nothing downloaded.
- ``medium-random``: the Medium architecture (hidden 1024, 12+12 layers, FFN 4096, vocabulary
  256206) with random weights, for GPU benchmarks; its tokenizer is the tiny one's (the large
  vocabulary is only there for the embedding's size).
- anything else: a local directory or a Hugging Face cache entry such as
  ``facebook/hf-seamless-m4t-medium``, loaded with ``local_files_only``.

    python -c "from probes.models import load_model; print(load_model('tiny', ['spa','deu']))"
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gradlens.errors import ModelNotFound
from gradlens.paths import cache_dir

TINY_CONFIG = dict(
    hidden_size=64, speech_encoder_layers=4, speech_encoder_attention_heads=4,
    speech_encoder_intermediate_size=128, encoder_layers=2, encoder_attention_heads=4,
    encoder_ffn_dim=128, decoder_layers=4, decoder_attention_heads=4, decoder_ffn_dim=128,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_adapter_layers=1,
    max_position_embeddings=256, speech_encoder_dropout=0.0, dropout=0.0, attention_dropout=0.0,
    activation_dropout=0.0, adaptor_dropout=0.0,
)
MEDIUM_CONFIG = dict(
    vocab_size=256206, hidden_size=1024, speech_encoder_layers=12, speech_encoder_attention_heads=16,
    speech_encoder_intermediate_size=4096, encoder_layers=12, encoder_attention_heads=16,
    encoder_ffn_dim=4096, decoder_layers=12, decoder_attention_heads=16, decoder_ffn_dim=4096,
    num_adapter_layers=1,
)
TINY_VOCAB = 1200
TOKENIZER_VERSION = 1  # bump when the tokenizer recipe changes: cached tokenizers are keyed on it


@dataclass
class LoadedModel:
    """A model with what the probe needs to feed it. ``config`` is JSON-ready provenance."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    feature_extractor: object
    config: dict

    def lang_token_id(self, lang: str) -> int:
        token = f"__{lang}__"
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer of {self.name} has no language token {token}")
        return int(token_id)


def train_tokenizer(texts: list[str], languages: list[str], out: Path, vocab_size: int = TINY_VOCAB):
    """Train a sentencepiece BPE model on ``texts`` into ``out`` and load it as the real
    ``SeamlessM4TTokenizer`` with the language tokens. The spm layout is fairseq's (unk 0,
    bos 1, eos 2, no pad), which the converter shifts to pad 0, unk 1, bos 2, eos 3."""
    import sentencepiece as spm
    from transformers import SeamlessM4TTokenizer

    out.mkdir(parents=True, exist_ok=True)
    chars = len(set("".join(texts)))
    spec = dict(model_prefix=str(out / "sentencepiece.bpe"),
                vocab_size=max(vocab_size, chars + 16), model_type="bpe", character_coverage=1.0,
                pad_id=-1, unk_id=0, bos_id=1, eos_id=2, num_threads=1, minloglevel=2,
                input_sentence_size=0, shuffle_input_sentence=False)
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), **spec)
    except RuntimeError as exc:  # a small manifest cannot fill the vocabulary: make it a soft limit
        if "Vocabulary size too high" not in str(exc):
            raise
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), hard_vocab_limit=False, **spec)
    tokens = [f"__{code}__" for code in languages]
    tok = SeamlessM4TTokenizer.from_pretrained(str(out), additional_special_tokens=tokens,
                                               src_lang=tokens[0], tgt_lang=tokens[0])
    tok.save_pretrained(str(out))
    return tok


def tiny_tokenizer(corpus_texts: list[str], languages: list[str]):
    """The tokenizer for ``tiny``, trained once per text set and cached (deterministic)."""
    from transformers import SeamlessM4TTokenizer

    digest = hashlib.sha256(json.dumps([TOKENIZER_VERSION, languages, corpus_texts]).encode())
    out = cache_dir() / "tokenizers" / digest.hexdigest()[:16]
    if (out / "tokenizer_config.json").exists():
        return SeamlessM4TTokenizer.from_pretrained(str(out))
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tok = train_tokenizer(corpus_texts, languages, tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process won the race; theirs is identical
        pass
    return tok


def _build(name: str, overrides: dict, tokenizer, seed: int) -> LoadedModel:
    from transformers import (SeamlessM4TConfig, SeamlessM4TFeatureExtractor,
                              SeamlessM4TForSpeechToText)

    vocab = overrides.get("vocab_size") or -(-len(tokenizer) // 64) * 64
    config = SeamlessM4TConfig(**{**overrides, "vocab_size": vocab})
    torch.manual_seed(seed)
    model = SeamlessM4TForSpeechToText(config)
    _set_lang_codes(model, tokenizer)
    return LoadedModel(name, model, tokenizer, SeamlessM4TFeatureExtractor(),
                       {"name": name, "seed": seed, **config.to_diff_dict()})


def _set_lang_codes(model, tokenizer) -> None:
    """``generate(tgt_lang=...)`` needs the language -> token id map in the generation config."""
    codes = {t[2:-2]: tokenizer.convert_tokens_to_ids(t)
             for t in tokenizer.all_special_tokens if t.startswith("__") and t.endswith("__")}
    if codes:
        model.generation_config.text_decoder_lang_to_code_id = codes


def load_model(name: str, languages: list[str], corpus_texts: list[str] | None = None,
               seed: int = 0) -> LoadedModel:
    """Load ``tiny``, ``medium-random``, a local directory or a local Hugging Face cache entry.

    ``corpus_texts`` trains the tiny tokenizer (and medium-random's); languages need
    ``__xxx__`` tokens. Nothing is ever downloaded.
    """
    languages = sorted(set(languages) | {"eng"})
    if name in ("tiny", "medium-random"):
        if corpus_texts is None:
            raise ValueError(f"{name} needs the corpus text to train its tokenizer")
        tok = tiny_tokenizer(corpus_texts, languages)
        return _build(name, TINY_CONFIG if name == "tiny" else MEDIUM_CONFIG, tok, seed)
    return load_pretrained(name)


def load_pretrained(name: str) -> LoadedModel:
    """A SeamlessM4T snapshot from a local directory or the local HF cache, offline."""
    from transformers import (SeamlessM4TFeatureExtractor, SeamlessM4TForSpeechToText,
                              SeamlessM4TTokenizer)

    path = Path(name).expanduser()
    if not path.is_dir():
        from huggingface_hub import constants, snapshot_download

        try:
            path = Path(snapshot_download(name, local_files_only=True))
        # not in the cache (LocalEntryNotFoundError, an OSError) or no repo id at all
        # (HFValidationError, a ValueError); anything else is a bug and keeps its traceback
        except (OSError, ValueError):
            raise ModelNotFound(
                f"model {name!r} is neither 'tiny', 'medium-random', a local directory, nor in "
                f"the local Hugging Face cache ({constants.HF_HUB_CACHE}). Nothing is downloaded "
                f"at run time: on a machine with internet run `huggingface-cli download {name}` "
                f"and copy the cache folder models--{name.replace('/', '--')} there, or pass the "
                "path of a directory made with save_pretrained."
            ) from None
    try:
        model = SeamlessM4TForSpeechToText.from_pretrained(str(path), local_files_only=True)
        tok = SeamlessM4TTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:  # a directory that is not a SeamlessM4T snapshot
        raise ModelNotFound(f"{path}: not a SeamlessM4T snapshot that loads offline "
                            f"({str(exc).splitlines()[0][:300]})") from None
    try:
        fe = SeamlessM4TFeatureExtractor.from_pretrained(str(path), local_files_only=True)
    except OSError:
        fe = SeamlessM4TFeatureExtractor()
    _set_lang_codes(model, tok)
    return LoadedModel(str(name), model, tok, fe, {"name": str(name), "path": str(path),
                                                    **model.config.to_diff_dict()})
