#!/usr/bin/python3
"""Mutation testing of MiniPACS: does the suite notice a small, realistic bug?

Each mutant in catalogue.json is one substitution in one source file (the `find` text must
occur exactly once: a catalogue that went stale with the code is reported, never guessed at).
The runner copies the work tree (git's tracked and untracked, non-ignored files) into a scratch
folder, builds it once, checks that the chosen tests pass unmutated, then for each mutant:
applies it, rebuilds incrementally, runs the tests, and restores the file. A mutant is
  killed    when a test fails (or the build breaks on purpose: `expect_build_failure`),
  survived  when every test still passes,
  stale     when its `find` text is not in the file exactly once,
  invalid   when it does not compile (a catalogue bug, not a test result).

By default each mutant runs the tests named in its `tests` regex (ctest -R) plus every unit
test: minutes per run instead of the full suite. `--full` runs the whole suite for every mutant
(about 4 minutes each on 2 cores). Not part of ctest or CI: run it on demand.

usage: tests/mutation/run.py [--full] [--only ID[,ID...]] [--module M] [--keep] [--reuse]
                             [--report docs/testing.md] [--scratch DIR]
Run in parts (--only/--module) with --reuse to build the scratch copy once; --report merges
each part's rows into the report table (a later result of a mutant replaces the earlier one).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sh(cmd, cwd=None, timeout=None, log=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True, errors="replace")
    if log is not None:
        with open(log, "a") as f:
            f.write("$ %s\n%s\n" % (" ".join(cmd), p.stdout))
    return p.returncode, p.stdout


def copy_tree(dst, changed_only=False):
    """Copies the tracked and untracked, non-ignored files. changed_only: only the files whose
    content differs from the scratch copy (then touched, so that make rebuilds what uses them)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           stdout=subprocess.PIPE, check=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        f = f.decode()
        src = os.path.join(ROOT, f)
        if not os.path.isfile(src):
            continue
        d = os.path.join(dst, f)
        if changed_only and os.path.isfile(d):
            with open(src, "rb") as a, open(d, "rb") as b:
                if a.read() == b.read():
                    continue
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(src, d)
        if changed_only:
            os.utime(d, None)


def ctest(build, regex, full, timeout):
    # until-pass:2: a test that fails twice in a row fails; a mutant that breaks a guarantee
    # fails every run, a test made flaky by a loaded machine gets its second chance.
    cmd = ["ctest", "-j", "2", "--timeout", "300", "--repeat", "until-pass:2"]
    if not full:
        cmd += ["-R", "^test_|" + regex if regex else "^test_"]
    t0 = time.time()
    try:
        rc, out = sh(cmd, cwd=build, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timeout", time.time() - t0
    failed = [l.split(" - ", 1)[1].split(" ")[0] for l in out.splitlines()
              if " - " in l and ("(Failed)" in l or "(Timeout)" in l or "(SEGFAULT)" in l
                                 or "Exception" in l)]
    if "No tests were found" in out:
        return True, "no tests matched %r" % regex, time.time() - t0
    return rc == 0, ",".join(failed), time.time() - t0


BEGIN, END = "<!-- mutation-report-begin -->", "<!-- mutation-report-end -->"
HEAD = "| mutant | module | what it breaks | result | killed by (test) / why equivalent | run |"


def summarize(catalogue, rows):
    """The summary line and table over every catalogue mutant that has a row."""
    order = [m["id"] for m in catalogue]
    ids = [i for i in order if i in rows] + sorted(i for i in rows if i not in order)
    count = {k: sum(1 for i in ids if rows[i][2] == k)
             for k in ("killed", "survived", "equivalent", "stale", "invalid", "not-run")}
    scored = count["killed"] + count["survived"]
    score = 100.0 * count["killed"] / scored if scored else 0.0
    summary = ("%d mutants: %d killed, %d survived, %d equivalent, %d stale, %d invalid, "
               "%d not run; score %.0f %% (killed / (killed + survived); equivalent mutants "
               "explained and not counted)" % (len(ids), count["killed"], count["survived"],
                                                count["equivalent"], count["stale"],
                                                count["invalid"], count["not-run"], score))
    lines = [HEAD, "|---|---|---|---|---|---|"]
    for i in ids:
        module, what, st, why, run = rows[i]
        esc = lambda t: re.sub(r"(?<!\\)\|", "\\|", t)
        lines.append("| `%s` | %s | %s | %s | %s | %s |" % (i, esc(module), esc(what), st,
                                                            esc(why[:300]), run))
    return summary, lines


def read_rows(doc):
    """The rows of an earlier report (so that a run in parts adds up to one table)."""
    rows = {}
    if BEGIN not in doc or END not in doc:
        return rows
    for l in doc[doc.index(BEGIN):doc.index(END)].splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", l.strip()[1:-1])]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = tuple(cells[1:])
    return rows


def write_report(path, catalogue, new_rows):
    doc = open(path).read() if os.path.exists(path) else ""
    rows = read_rows(doc)
    rows.update(new_rows)
    known = {m["id"] for m in catalogue}
    rows = {k: v for k, v in rows.items() if k in known}  # mutants dropped from the catalogue
    summary, lines = summarize(catalogue, rows)
    block = "%s\n%s\n\n%s\n%s" % (BEGIN, summary, "\n".join(lines), END)
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc += "\n" + block + "\n"
    open(path, "w").write(doc)


def check_stale(mutants):
    """Mutants whose find text is not exactly once in the work tree's file."""
    bad = []
    for m in mutants:
        path = os.path.join(ROOT, m["file"])
        n = open(path).read().count(m["find"]) if os.path.exists(path) else 0
        if n != 1:
            bad.append((m["id"], m["file"], n))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="run the whole suite for each mutant")
    ap.add_argument("--only", default="", help="comma-separated mutant IDs")
    ap.add_argument("--module", default="", help="only mutants of this module")
    ap.add_argument("--scratch", default="/tmp/mp-mutation")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the scratch folder of an earlier --keep run (only changed files "
                         "are copied, the build is incremental); implies --keep")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the unmutated run (only right after a green baseline of the same "
                         "tree and tests)")
    ap.add_argument("--check", action="store_true",
                    help="only check that every find text occurs once (no build)")
    ap.add_argument("--report", default="", help="write the Markdown report to this file")
    ap.add_argument("--catalogue", default=os.path.join(os.path.dirname(__file__), "catalogue.json"))
    a = ap.parse_args()

    cat = json.load(open(a.catalogue))
    mutants = cat["mutants"]
    if a.only:
        keep = set(a.only.split(","))
        mutants = [m for m in mutants if m["id"] in keep]
    if a.module:
        mutants = [m for m in mutants if m["module"] == a.module]
    if not mutants:
        sys.exit("no mutant selected")
    stale = check_stale(mutants)
    for i, f, n in stale:
        print("stale: %s: its find text occurs %d times in %s" % (i, n, f))
    if a.check:
        print("%d mutants, %d stale" % (len(mutants), len(stale)))
        sys.exit(1 if stale else 0)

    src = os.path.join(a.scratch, "src")
    build = os.path.join(a.scratch, "build")
    log = os.path.join(a.scratch, "log.txt")
    if a.reuse:
        a.keep = True
    if a.reuse and os.path.isdir(build):
        copy_tree(src, changed_only=True)
    else:
        shutil.rmtree(a.scratch, ignore_errors=True)
        os.makedirs(src)
        copy_tree(src)
    print("scratch copy in %s; building" % src, flush=True)
    rc, out = sh(["cmake", "-S", src, "-B", build], log=log)
    if rc != 0:
        sys.exit("cmake failed:\n" + out[-3000:])
    rc, out = sh(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], log=log)
    if rc != 0:
        sys.exit("baseline build failed:\n" + out[-3000:])

    # Baseline: every test any selected mutant relies on passes without a mutation. A mutant
    # whose tests include one that is red unmutated is not run (no kill can be trusted).
    red = []
    if a.no_baseline:
        print("baseline: skipped (--no-baseline)", flush=True)
    else:
        regex = "|".join(sorted({m["tests"] for m in mutants if m.get("tests")}))
        ok, failed, secs = ctest(build, regex, a.full, 3600)
        print("baseline: %s (%.0f s)%s" % ("green" if ok else "RED", secs,
                                           "" if ok else " failing: " + failed), flush=True)
        if not ok:
            red = [t for t in failed.split(",") if t]
            if not red or any(t.startswith("test_") for t in red) or a.full:
                sys.exit("the baseline is red: fix the suite before mutating")

    results = []
    for m in mutants:
        path = os.path.join(src, m["file"])
        text = open(path).read() if os.path.exists(path) else ""
        count = text.count(m["find"])
        t0 = time.time()
        if count != 1:
            res = ("stale", "find text occurs %d times" % count)
        elif any(re.search(m.get("tests") or "^$", t) for t in red):
            res = ("not-run", "baseline red: " + ",".join(t for t in red
                                                       if re.search(m.get("tests") or "^$", t)))
        else:
            open(path, "w").write(text.replace(m["find"], m["replace"], 1))
            try:
                rc, out = sh(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], log=log)
                if rc != 0:
                    res = ("killed", "build fails") if m.get("expect_build_failure") else \
                          ("invalid", "does not compile")
                else:
                    ok, failed, _ = ctest(build, m.get("tests", ""), a.full, 1500)
                    res = ("survived", "") if ok else ("killed", failed)
            finally:
                open(path, "w").write(text)
                os.utime(path, None)  # newer than the mutant's object: rebuilt next time
        results.append((m, res[0], res[1], time.time() - t0))
        print("%-28s %-9s %5.0f s  %s" % (m["id"], res[0], time.time() - t0, res[1][:120]),
              flush=True)
    sh(["cmake", "--build", build, "-j", "2"], log=log)

    # A survivor the catalogue explains as equivalent (no test can tell it from the original)
    # is reported as such and left out of the score.
    results = [(m, "equivalent", m["equivalent"], t) if st == "survived" and m.get("equivalent")
               else (m, st, why, t) for m, st, why, t in results]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    mode = "full suite" if a.full else "named tests + unit tests"
    rows = {m["id"]: (m["module"], m["what"], st, why, "%s, %s" % (when, mode))
            for m, st, why, _ in results}
    print("\n" + summarize(cat["mutants"], rows)[0])
    if a.report:
        write_report(a.report, cat["mutants"], rows)
    if not a.keep:
        shutil.rmtree(a.scratch, ignore_errors=True)
    sys.exit(0 if all(r[1] not in ("survived", "invalid") for r in results) else 1)


if __name__ == "__main__":
    main()
