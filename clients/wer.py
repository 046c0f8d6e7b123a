"""Word error rate with a normaliser, so formatting differences are not counted as errors.

Whisper writes "Press 2." where a reference says "press two"; both become "press two".
"""

import re

import jiwer

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SPELLING = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay"}


def _number_words(number: int) -> str:
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    return " ".join(_ONES[int(digit)] for digit in str(number))


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"\d+", lambda m: f" {_number_words(int(m.group()))} ", text)
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return " ".join(_SPELLING.get(word, word) for word in text.split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: all errors over all reference words."""
    return jiwer.wer([normalize(r) for r in references], [normalize(h) or "" for h in hypotheses])
