"""Writes the fortunes example's ESF files (data/train.csv, validation.csv, test.csv) from Debian's `fortunes` package.

The package (1:1.99.1-7.3 in bookworm) installs one file per topic under /usr/share/games/fortunes, fortunes separated
by lines holding only '%'. Four topics become the labels. Run with any Python 3, no packages:

    python3 examples/fortunes/make-data.py [FORTUNES_DIR]

FORTUNES_DIR defaults to /usr/share/games/fortunes (`apt-get install fortunes`), or a folder unpacked from the .deb
(`apt-get download fortunes && dpkg-deb -x fortunes_*.deb x` gives x/usr/share/games/fortunes). The output is the
same on every run (a fixed seed).
"""
import csv
import os
import random
import sys

TOPICS = ["computers", "politics", "science", "startrek"]
PER_TOPIC = 500          # at most this many fortunes of a topic (startrek has 227)
MAX_CHARS = 400          # longer fortunes (whole poems, dialogues) are left out
SPLITS = [("train", 0.8), ("validation", 0.1), ("test", 0.1)]

source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/games/fortunes"
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
rng = random.Random(17)

rows = {name: [] for name, _ in SPLITS}
for label, topic in enumerate(TOPICS):
    with open(os.path.join(source, topic), encoding="utf-8", errors="replace") as f:
        texts = [" ".join(t.split()) for t in f.read().split("\n%\n")]
    texts = sorted({t for t in texts if 0 < len(t) <= MAX_CHARS and t != "%"})
    rng.shuffle(texts)
    texts = texts[:PER_TOPIC]
    start = 0
    for i, (name, share) in enumerate(SPLITS):
        end = len(texts) if i == len(SPLITS) - 1 else start + round(share * len(texts))
        rows[name] += [(topic, label, t) for t in texts[start:end]]
        start = end

os.makedirs(here, exist_ok=True)
next_id = 0
for name, _ in SPLITS:
    rng.shuffle(rows[name])
    with open(os.path.join(here, name + ".csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "topic", "label", "text"])
        for topic, label, text in rows[name]:
            w.writerow([next_id, topic, label, text])
            next_id += 1
    print(f"{name}: {len(rows[name])} rows")
