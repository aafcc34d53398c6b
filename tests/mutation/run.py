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

usage: tests/mutation/run.py [--full] [--only ID[,ID...]] [--module M] [--keep]
                             [--report docs/testing.md] [--scratch DIR]
"""
import argparse
import json
import os
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


def copy_tree(dst):
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
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(src, d)


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="run the whole suite for each mutant")
    ap.add_argument("--only", default="", help="comma-separated mutant IDs")
    ap.add_argument("--module", default="", help="only mutants of this module")
    ap.add_argument("--scratch", default="/tmp/mp-mutation")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
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

    src = os.path.join(a.scratch, "src")
    build = os.path.join(a.scratch, "build")
    log = os.path.join(a.scratch, "log.txt")
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

    # Baseline: every test any selected mutant relies on passes without a mutation.
    regex = "|".join(sorted({m["tests"] for m in mutants if m.get("tests")}))
    ok, failed, secs = ctest(build, regex, a.full, 1800)
    print("baseline: %s (%.0f s)%s" % ("green" if ok else "RED", secs,
                                       "" if ok else " failing: " + failed), flush=True)
    if not ok:
        sys.exit("the baseline is red: fix the suite before mutating")

    results = []
    for m in mutants:
        path = os.path.join(src, m["file"])
        text = open(path).read() if os.path.exists(path) else ""
        count = text.count(m["find"])
        t0 = time.time()
        if count != 1:
            res = ("stale", "find text occurs %d times" % count)
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

    counted = [r for r in results if r[1] in ("killed", "survived")]
    killed = sum(1 for r in counted if r[1] == "killed")
    score = 100.0 * killed / len(counted) if counted else 0.0
    lines = ["| mutant | module | what it breaks | result | killed by |", "|---|---|---|---|---|"]
    for m, st, why, _ in results:
        lines.append("| `%s` | %s | %s | %s | %s |" % (m["id"], m["module"], m["what"], st,
                                                       why.replace("|", "/")[:160]))
    summary = ("%d mutants: %d killed, %d survived, %d stale, %d invalid; score %.0f %% "
               "(killed / (killed + survived)); tests: %s" %
               (len(results), killed, len(counted) - killed,
                sum(1 for r in results if r[1] == "stale"),
                sum(1 for r in results if r[1] == "invalid"), score,
                "full suite per mutant" if a.full else "named tests + unit tests per mutant"))
    print("\n" + summary)
    report = summary + "\n\n" + "\n".join(lines) + "\n"
    if a.report:
        doc = open(a.report).read() if os.path.exists(a.report) else ""
        begin, end = "<!-- mutation-report-begin -->", "<!-- mutation-report-end -->"
        block = "%s\n%s%s" % (begin, report, end)
        if begin in doc and end in doc:
            doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
        else:
            doc += "\n" + block + "\n"
        open(a.report, "w").write(doc)
    if not a.keep:
        shutil.rmtree(a.scratch, ignore_errors=True)
    sys.exit(0 if all(r[1] != "survived" for r in results) else 1)


if __name__ == "__main__":
    main()
