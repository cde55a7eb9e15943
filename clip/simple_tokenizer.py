"""CLIP's byte-level BPE tokenizer (same vocabulary, rules and ids as OpenAI's).

The vocabulary is `bpe_simple_vocab_16e6.txt.gz` next to this file: 256 byte symbols, the same
256 with the end-of-word marker `</w>`, 48,894 merges, then `<|startoftext|>` (49406) and
`<|endoftext|>` (49407): 49,408 ids in all.
"""

from __future__ import annotations

import gzip
import html
import os
from functools import lru_cache

import ftfy
import regex as re

SOT_TEXT = "<|startoftext|>"
EOT_TEXT = "<|endoftext|>"
_NUM_MERGES = 49152 - 256 - 2  # vocabulary size minus bytes and the two special tokens


def default_bpe() -> str:
    """Path of the BPE merges file shipped with this package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpe_simple_vocab_16e6.txt.gz")


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """Map every byte 0..255 to a printable unicode character (no whitespace/control chars).

    Printable latin-1 bytes map to themselves; the others are shifted to code points 256+.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    byte_values = printable[:]
    code_points = printable[:]
    shift = 0
    for b in range(256):
        if b not in printable:
            byte_values.append(b)
            code_points.append(256 + shift)
            shift += 1
    return dict(zip(byte_values, [chr(c) for c in code_points]))


def get_pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    """Set of adjacent symbol pairs of a word given as a tuple of symbols."""
    return set(zip(word[:-1], word[1:]))


def basic_clean(text: str) -> str:
    """Fix mojibake with ftfy and undo (double) HTML escaping."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    """Collapse runs of whitespace to one space."""
    return re.sub(r"\s+", " ", text).strip()


class SimpleTokenizer:
    """Text <-> BPE ids, exactly as OpenAI's `clip.simple_tokenizer.SimpleTokenizer`."""

    def __init__(self, bpe_path: str | None = None) -> None:
        bpe_path = bpe_path or default_bpe()
        if not os.path.isfile(bpe_path):
            raise FileNotFoundError(
                f"CLIP BPE vocabulary not found at {bpe_path}; it ships with the clip/ package "
                "(restore clip/bpe_simple_vocab_16e6.txt.gz from the repository)."
            )
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        with gzip.open(bpe_path) as f:
            lines = f.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]  # line 0 is a header
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(merge) for merge in merges]
        vocab += [SOT_TEXT, EOT_TEXT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.bpe_ranks = {merge: i for i, merge in enumerate(merges)}
        self.cache = {SOT_TEXT: SOT_TEXT, EOT_TEXT: EOT_TEXT}
        self.pat = re.compile(
            r"<\|startoftext\|>|<\|endoftext\|>"  # special tokens
            r"|'s|'t|'re|'ve|'m|'ll|'d"  # English contractions
            r"|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",  # letter runs, single digits, other symbol runs
            re.IGNORECASE,
        )

    def bpe(self, token: str) -> str:
        """Apply the BPE merges to one pre-token; returns its pieces joined by spaces."""
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"

        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                if first not in word[i:]:
                    merged.extend(word[i:])
                    break
                j = word.index(first, i)
                merged.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        pieces = " ".join(word)
        self.cache[token] = pieces
        return pieces

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (lower-cased, cleaned), without start/end tokens."""
        ids: list[int] = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self.bpe(token).split(" "))
        return ids

    def decode(self, tokens: list[int]) -> str:
        """Text of a list of ids; word ends become spaces (so the result ends with one)."""
        text = "".join(self.decoder[int(t)] for t in tokens)
        raw = bytearray(self.byte_decoder[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ")
