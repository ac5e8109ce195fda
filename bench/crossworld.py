#!/usr/bin/env python3
"""Cross-world evaluation of the spam defense: train on some traffic worlds,
judge on worlds the model never saw, several seeds, every direction.

Three independently built worlds to train and choose on:
  tg  fixtures/trafficgen (Rust)
  b   fixtures/world_b    (Python, shares no code or parameters with tg)
  c   fixtures/world_c    (Python, shares no code or parameters with tg or b)
and nineteen judged only, never trained on:
  d   fixtures/world_d    (Python, shares nothing with the others)
  e   fixtures/world_e    (Python, shares nothing with the others)
  f   fixtures/world_f    (Python, shares nothing with the others)
  g   fixtures/world_g    (Python, shares nothing with the others)
  h   fixtures/world_h    (Python, shares nothing with the others)
  i   fixtures/world_i    (Python, shares nothing with the others)
  j   fixtures/world_j    (Python, shares nothing with the others; nothing chosen on it)
  k   fixtures/world_k    (Python, shares nothing with the others; nothing chosen on it)
  l   fixtures/world_l    (Python, shares nothing with the others; one rule chosen looking at it)
  m   fixtures/world_m    (Python, shares nothing with the others; two rules chosen looking at it)
  n   fixtures/world_n    (Python, shares nothing with the others; one rule chosen on it)
  o   fixtures/world_o    (Python, shares nothing with the others; two rules chosen looking at it)
  p   fixtures/world_p    (Python, shares nothing with the others; one rule chosen looking at it)
  q   fixtures/world_q    (Python, shares nothing with the others; one rule chosen looking at it)
  r   fixtures/world_r    (Python, shares nothing with the others; one rule chosen on it, one looking at it)
  s   fixtures/world_s    (Python, shares nothing with the others; two rules chosen on it, one looking at it)
  t   fixtures/world_t    (Python, shares nothing with the others; one rule chosen looking at it)
  u   fixtures/world_u    (Python, shares nothing with the others; nothing chosen on it)
  v   fixtures/world_v    (Python, shares nothing with the others; nothing chosen on it)

Each 24 h and about 11 000 senders. For every training set (one world, or two
worlds leaving the third out) a model is trained on seed 1 and judged on
seeds 1-3 of every world it was not trained on, with the gateway's default
policy (evidence rule, hold budget). The bundled model is then trained on
all three worlds with the same lines (`--bundle`).

    python3 bench/crossworld.py [--out DIR] [--seeds 1,2,3] [--bundle]

Writes DIR/results.jsonl and prints the README's markdown tables.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lines chosen on the cross-world figures below (not on any training
# world's own held-out senders): a block needs the spam line and strong
# evidence, a hold the suspect line, evidence and room in the hold budget.
SUSPECT_LINE = "0.5"
SPAM_LINE = "0.7"
WORLDS = ("tg", "b", "c")
# Judged on, never trained on. Worlds D, E and F were written after the
# others, each by someone who read none of the other generators nor the
# classifier (see their READMEs). D was held out for its first measurement
# and then used to choose the complaint rules (README, Judged across
# worlds); E was untouched through that and is looked at since; F was
# measured first and then two rules were chosen on it; G was looked at
# while choosing since; H (added 2026-12-06, late) was measured first and
# then one rule was chosen on it; I (added the same evening) was measured
# first and then one rule was chosen on it; J and K (the same evening,
# after those two rules), L and M (2026-12-07; M turned down a rule chosen
# on F, I and L) and O are the ones nothing was chosen on; N (2026-12-07)
# was measured first and then one rule was chosen on it, checked on O; P
# (2026-12-07, sixth session) checked the campaign link's two-number rule,
# chosen looking at M and O; Q (the same session) checked that rule and the
# receipts wait for failures, chosen looking at N and P. The passcode pool's
# resends (seventh session) were chosen looking at H, I, L, M, N and O; R
# (the same session) was neutral on them, and then the premium ranges a
# deployment serves were chosen on it; S (the same session) checked both,
# and then the mix's warm-up and the premium run were chosen on it; T (the
# same session) checked all of them. Dead numbers timed from hand-over
# (eighth session) were chosen looking at Q, R, S and T; U (the same
# session) checked it, though its brief named the short validity period of
# passcodes the rule rests on; V (the same session, its brief silent on
# it) checked it again.
HOLDOUT = ("d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t",
           "u", "v")
TRAIN_SETS = (("tg",), ("b",), ("c",), ("tg", "b"), ("tg", "c"), ("b", "c"), ("tg", "b", "c"))


BUNDLE_PROVENANCE = (
    "bench/crossworld.py --bundle: trafficgen, world_b and world_c seed 1 "
    "(24 h, ~11 000 senders each); lines 0.5 / 0.7 chosen on the "
    "leave-one-world-out figures in the README")


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def generate(world, seed, out):
    d = os.path.join(out, "worlds", f"{world}{seed}")
    trace, labels = os.path.join(d, "trace.jsonl"), os.path.join(d, "labels.jsonl")
    if os.path.exists(labels):
        return d
    os.makedirs(d, exist_ok=True)
    if world == "tg":
        cmd = ["target/release/trafficgen", "--seed", str(seed), "--days", "1",
               "--scale", "7", "--trace", trace, "--labels", labels]
    else:
        script = f"fixtures/world_{world}/world_{world}.py"
        cmd = [sys.executable, script, "--seed", str(seed), "--hours", "24",
               "--senders", "11000", "--trace", trace, "--labels", labels]
    run(cmd)
    return d


def train(names, out, seed=1, provenance=None):
    model = os.path.join(out, "models", "+".join(names) + ".json")
    if os.path.exists(model):
        return model
    os.makedirs(os.path.dirname(model), exist_ok=True)
    dirs = [generate(w, seed, out) for w in names]
    extra = ["--provenance", provenance] if provenance else []
    run(["target/release/examples/crossworld", "train", "--out", model,
         "--suspect-line", SUSPECT_LINE, "--spam-line", SPAM_LINE, *extra, *dirs])
    return model


def evaluate(model, dirs):
    args = ["target/release/examples/crossworld", "eval", "--json"]
    if model:
        args += ["--model", model]
    p = run(args + dirs, capture_output=True, text=True)
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def table(rows):
    print("| trained on | judged on | seed | precision | recall | legit held | legit msgs after flag | otp / reminder blocked | AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['trained_on']} | {r['judged_on']} | {r['seed']} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {100 * r['legit_held_share']:.2f} % | "
              f"{100 * r['legit_messages_after_flag_share']:.2f} % | "
              f"{r['otp_spam']} / {r['reminder_spam']} | {r['auc']:.4f} |")


def categories(rows):
    """Legitimate senders held, per category, summed over the rows."""
    held, total = {}, {}
    for r in rows:
        for c in r["legit"]:
            key = (r["judged_on"], c["category"])
            held[key] = held.get(key, 0) + c["spam"] + c["suspect"]
            total[key] = total.get(key, 0) + c["senders"]
    print("| judged on | legitimate category | held / senders |")
    print("|---|---|---|")
    for key in sorted(total):
        print(f"| {key[0]} | {key[1]} | {held[key]} / {total[key]} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="target/crossworld")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--bundle", action="store_true",
                    help="also train on all three worlds and write classifier/model/default.json")
    a = ap.parse_args()
    out = os.path.join(ROOT, a.out)
    seeds = [int(s) for s in a.seeds.split(",")]
    run(["cargo", "build", "--release", "-p", "trafficgen", "--bin", "trafficgen", "-p", "classifier",
         "--example", "crossworld"])
    rows = []
    for names in TRAIN_SETS:
        model = train(names, out, provenance=BUNDLE_PROVENANCE if names == WORLDS else None)
        unseen = [w for w in WORLDS + HOLDOUT if w not in names]
        for w in unseen:
            dirs = [generate(w, s, out) for s in seeds]
            for s, r in zip(seeds, evaluate(model, dirs)):
                r.update(trained_on="+".join(names), judged_on=w, seed=s)
                rows.append(r)
    with open(os.path.join(out, "results.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    table(rows)
    print()
    print()
    categories([r for r in rows if r["trained_on"].count("+") == 1 and r["judged_on"] in WORLDS])
    print()
    categories([r for r in rows if r["trained_on"] == "tg+b+c"])
    if a.bundle:
        model = train(WORLDS, out, provenance=BUNDLE_PROVENANCE)
        with open(model) as src, open(os.path.join(ROOT, "classifier/model/default.json"), "w") as dst:
            dst.write(src.read())
        print("\nbundled model: trained on tg1 + b1 + c1 -> classifier/model/default.json", file=sys.stderr)


if __name__ == "__main__":
    main()
