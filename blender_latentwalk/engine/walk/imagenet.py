"""The 1000 ImageNet classes BigGAN draws, shipped with the add-on (no download)."""

import functools
import os

_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "imagenet_classes.tsv")


@functools.lru_cache(maxsize=1)
def class_names():
    """list of str, length 1000: the first name of each class, in BigGAN's index order."""
    names = []
    with open(_TABLE, encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("#") or not line.strip():
                continue
            index, _synset, labels = line.rstrip("\n").split("\t")
            assert int(index) == len(names)
            names.append(labels.split(",")[0].strip())
    return names


def class_name(index):
    return class_names()[index]


def search(text, limit=20):
    """Class indices whose name contains ``text`` (case-insensitive), best first."""
    text = text.strip().lower()
    names = class_names()
    hits = [i for i, name in enumerate(names) if text in name.lower()]
    return sorted(hits, key=lambda i: (not names[i].lower().startswith(text), names[i]))[:limit]
