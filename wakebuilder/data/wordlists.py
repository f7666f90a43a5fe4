"""Generic speech for negatives: common English words, isolated words and simple sentences from templates."""

from __future__ import annotations

import numpy as np

COMMON_WORDS = tuple(
    """the be to of and a in that have it for not on with he as you do at this but his by from they we say
    her she or an will my one all would there their what so up out if about who get which go me when make can
    like time no just him know take people into year your good some could them see other than then now look
    only come its over think also back after use two how our work first well way even new want because any
    these give day most us is was are were been has had did said made went took saw came got thought found
    water coffee music window kitchen garden morning evening weather tomorrow yesterday dinner lunch breakfast
    phone table chair door light movie story number money paper minute hour week month city road car train
    children mother father brother sister friend teacher doctor house school office market river mountain
    happy quick slow bright dark warm cold loud quiet early late little big long short open close start stop
    turn play read write speak listen watch call help move bring carry hold leave keep begin seem show hear
    run walk sit stand eat drink sleep wake cook clean wash buy sell send pay meet wait learn change follow""".split()
)
TEMPLATES = (
    "{a} {b} {c}",
    "please {v} the {n}",
    "did you {v} the {n} {t}",
    "i think the {n} is {adj}",
    "we should {v} {t}",
    "the {adj} {n} is in the {n2}",
    "can you {v} my {n}",
    "it was a {adj} {n}",
    "{t} we will {v} the {n}",
    "what time is it",
    "turn on the {n}",
    "how is the weather {t}",
)
NOUNS = ("coffee", "window", "kitchen", "garden", "phone", "table", "door", "light", "movie", "story", "paper",
         "car", "train", "house", "office", "market", "river", "music", "dinner", "book")
VERBS = ("open", "close", "start", "stop", "play", "read", "watch", "call", "move", "bring", "clean", "wash",
         "buy", "send", "find", "check", "fix", "take")
ADJECTIVES = ("happy", "quick", "slow", "bright", "dark", "warm", "cold", "loud", "quiet", "little", "big", "new")
TIMES = ("today", "tomorrow", "tonight", "later", "now", "this morning", "in an hour", "next week")


def random_sentences(n: int, *, seed: int) -> list[str]:
    """``n`` short sentences or word triples, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    out = []
    for _ in range(n):
        template = pick(TEMPLATES)
        out.append(template.format(
            a=pick(COMMON_WORDS), b=pick(COMMON_WORDS), c=pick(COMMON_WORDS), v=pick(VERBS), n=pick(NOUNS),
            n2=pick(NOUNS), adj=pick(ADJECTIVES), t=pick(TIMES),
        ))
    return out


def random_words(n: int, *, seed: int, vocabulary: tuple[str, ...]) -> list[str]:
    """``n`` single words, reproducible from ``seed``: half from ``COMMON_WORDS``, half from ``vocabulary``.

    Spoken alone, they are the negatives closest in genre to a one-word wake word: short utterances
    with a word's whole prosody (commands, names, answers), which sentences do not cover.
    """
    rng = np.random.default_rng(seed)
    pools = (COMMON_WORDS, vocabulary or COMMON_WORDS)
    return [pools[i % 2][int(rng.integers(len(pools[i % 2])))] for i in range(n)]
