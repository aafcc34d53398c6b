#!/usr/bin/env bash
# docker-check.sh -- checks the container files without a Docker daemon (none runs on the build
# machines). Used by tests/integration/60_docker_*.sh; handy by hand after editing docker/.
#
#   scripts/docker-check.sh files        Dockerfile shape (stages, the one build script, user,
#                                        ports, volume, config path, health check), compose
#                                        files (`docker-compose config` + requirements), every
#                                        ORTHANC__* name used in docker/ is a real option.
#   scripts/docker-check.sh libs BIN     every shared library `ldd BIN` resolves comes from a
#                                        package of the runtime stage's apt-get line, from
#                                        their dependencies, or from bookworm-slim's base set.
#   scripts/docker-check.sh rootfs BIN   the real thing, minus Docker: debootstrap a minimal
#                                        bookworm, replay the runtime stage in it (its RUN,
#                                        COPY, USER, ENV lines), start ENTRYPOINT+CMD as that
#                                        user as PID 1 of a new PID namespace, probe it with the
#                                        HEALTHCHECK, upload a file, stop it with SIGTERM.
#                                        Needs root and the apt mirror (about 30 s).
#
# Exit status 0 when every check passes; each failure is printed as "FAIL: ...".
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
PY=/usr/bin/python3
DOCKERFILE="${MINIPACS_DOCKERFILE:-$SRC/docker/Dockerfile}"   # overridable: the tests feed broken copies

# The parsed Dockerfile, as JSON: [{"from": image, "as": name, "ins": [[INSTR, args], ...]}, ...]
# (continuation lines joined, comments dropped).
parse_dockerfile() {
  $PY - "$DOCKERFILE" <<'PY'
import json, re, sys
lines, cur = [], ""
for raw in open(sys.argv[1]).read().splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if s.startswith("#"):          # comment inside a continued instruction
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s); cur = ""
if cur: lines.append(cur)
stages = []
for l in lines:
    instr, _, args = l.partition(" ")
    instr = instr.upper(); args = args.strip()
    if instr == "FROM":
        m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
        stages.append({"from": m.group(1), "as": m.group(2), "ins": []})
    elif stages:
        stages[-1]["ins"].append([instr, args])
print(json.dumps(stages))
PY
}

# The packages named by the runtime (last) stage's `apt-get install` lines, one per line.
runtime_packages() {
  parse_dockerfile | $PY -c '
import json, re, sys
st = json.load(sys.stdin)[-1]
for instr, args in st["ins"]:
    if instr != "RUN": continue
    for cmd in re.split(r"&&|;|\|\|", args):
        w = cmd.split()
        if "apt-get" in w and "install" in w:
            for t in w[w.index("install") + 1:]:
                if not t.startswith("-"): print(t)
'
}

check_files() {
  local rc=0
  parse_dockerfile > "$TMP/stages.json"
  $PY - "$TMP/stages.json" "$SRC" <<'PY' || rc=1
import json, os, re, sys
stages = json.load(open(sys.argv[1])); src = sys.argv[2]
bad = []
def need(cond, msg):
    if not cond: bad.append(msg)
need(len(stages) >= 2, "Dockerfile: multi-stage build expected, found %d stage(s)" % len(stages))
for s in stages:
    need(s["from"] == "debian:bookworm-slim", "Dockerfile: stage %s is FROM %s, not debian:bookworm-slim" % (s["as"], s["from"]))
build, run = stages[0], stages[-1]
runs = lambda st: [a for i, a in st["ins"] if i == "RUN"]
# One build script for CI and the image: deps.sh and build.sh, nothing else compiles.
need(any(re.search(r"(^|[\s/])scripts/deps\.sh\b", r) for r in runs(build)), "Dockerfile: the build stage must RUN scripts/deps.sh")
b = [r for r in runs(build) if re.search(r"(^|[\s/])scripts/build\.sh\b", r)]
need(b, "Dockerfile: the build stage must RUN scripts/build.sh")
need(any("-DCMAKE_BUILD_TYPE=Release" in r for r in b), "Dockerfile: scripts/build.sh must build with -DCMAKE_BUILD_TYPE=Release")
for st in stages:
    for r in runs(st):
        m = re.search(r"(^|[\s;&|(])(cmake|make|ninja|gcc|g\+\+|cc|c\+\+|clang)(\s|$)", r)
        need(not m, "Dockerfile: RUN calls %s directly (build through scripts/build.sh only): %s" % (m and m.group(2), r))
# The runtime stage: libraries only, non-root, ports, volume, config, health check.
for r in runs(run):
    need("deps.sh" not in r and "build.sh" not in r, "Dockerfile: the runtime stage must not build: " + r)
    need(not re.search(r"\S+-dev\b", r), "Dockerfile: -dev package in the runtime stage: " + r)
    need(not re.search(r"\b(build-essential|cmake|gcc|g\+\+)\b", r), "Dockerfile: build tools in the runtime stage: " + r)
users = [a for i, a in run["ins"] if i == "USER"]
need(users and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: the runtime stage must end with a non-root USER (found %s)" % users)
exposed = set()
for i, a in run["ins"]:
    if i == "EXPOSE": exposed |= {p.split("/")[0] for p in a.split()}
need({"8042", "4242"} <= exposed, "Dockerfile: EXPOSE 8042 and 4242 (found %s)" % sorted(exposed))
vols = []
for i, a in run["ins"]:
    if i == "VOLUME":
        vols += json.loads(a) if a.startswith("[") else a.split()
need("/var/lib/orthanc/db" in vols, "Dockerfile: VOLUME /var/lib/orthanc/db (found %s)" % vols)
def cmdline(instr):
    v = [a for i, a in run["ins"] if i == instr]
    if not v: return []
    return json.loads(v[-1]) if v[-1].startswith("[") else v[-1].split()
argv = cmdline("ENTRYPOINT") + cmdline("CMD")
need("/etc/orthanc/orthanc.json" in argv, "Dockerfile: the server must read /etc/orthanc/orthanc.json (runs %s)" % argv)
copies = {}
for i, a in run["ins"]:
    if i == "COPY":
        w = [t for t in a.split() if not t.startswith("--")]
        copies[w[-1]] = (a, w[:-1])
        if "--from=" not in a:
            for f in w[:-1]:
                need(os.path.exists(os.path.join(src, f)), "Dockerfile: COPY source %s does not exist" % f)
need(argv and argv[0] in copies and "--from=" in copies[argv[0]][0], "Dockerfile: the entrypoint %s must be COPY --from the build stage" % (argv[:1],))
need("/etc/orthanc/orthanc.json" in copies, "Dockerfile: the image must carry a default /etc/orthanc/orthanc.json")
hc = [a for i, a in run["ins"] if i == "HEALTHCHECK"]
need(hc and "NONE" not in hc[-1].split(), "Dockerfile: HEALTHCHECK missing")
if hc:
    probe = hc[-1]
    m = re.search(r"CMD\s+(.*)$", probe)
    cmd = m.group(1) if m else ""
    cmdw = json.loads(cmd) if cmd.startswith("[") else cmd.split()
    text = probe
    if cmdw and cmdw[0] in copies:                      # a probe script copied from the repo
        text += open(os.path.join(src, copies[cmdw[0]][1][0])).read()
    need("/system" in text, "Dockerfile: the HEALTHCHECK must GET /system")
for m in bad: print("FAIL: " + m)
sys.exit(1 if bad else 0)
PY
  [ $rc = 0 ] && echo "ok: Dockerfile (two bookworm-slim stages, scripts/deps.sh + scripts/build.sh, runtime shape)"

  # Compose: docker-compose validates and normalises (no daemon needed for `config`), then
  # our own requirements are checked on the normalised form.
  command -v docker-compose >/dev/null || { echo "FAIL: docker-compose not installed (scripts/deps.sh)"; return 1; }
  local c=docker/docker-compose.yml k=docker/docker-compose.constrained.yml
  if ! MINIPACS_PASSWORD=check docker-compose -f $c config > "$TMP/compose.yml" 2> "$TMP/compose.err"; then
    echo "FAIL: docker-compose config $c:"; cat "$TMP/compose.err"; return 1
  fi
  if ! MINIPACS_PASSWORD=check docker-compose -f $c -f $k config > "$TMP/constrained.yml" 2> "$TMP/compose.err"; then
    echo "FAIL: docker-compose config $c + $k:"; cat "$TMP/compose.err"; return 1
  fi
  $PY - "$TMP/compose.yml" "$TMP/constrained.yml" "$SRC" <<'PY' || rc=1
import os, sys, yaml
full, constrained, src = (yaml.safe_load(open(sys.argv[1])), yaml.safe_load(open(sys.argv[2])), sys.argv[3])
bad = []
def need(cond, msg):
    if not cond: bad.append(msg)
def check(doc, name, limit):
    svcs = doc.get("services") or {}
    need(len(svcs) == 1, "%s: one service expected, found %s" % (name, list(svcs)))
    if not svcs: return
    s = next(iter(svcs.values()))
    b = s.get("build") or {}
    need(os.path.realpath(b.get("context", "")) == os.path.realpath(src) and b.get("dockerfile") == "docker/Dockerfile",
         "%s: build must be the repository root with docker/Dockerfile (found %s)" % (name, b))
    need(str(s.get("mem_limit", "")).lower() == limit, "%s: mem_limit %s expected (found %s)" % (name, limit, s.get("mem_limit")))
    need(s.get("restart") in ("always", "unless-stopped", "on-failure"), "%s: restart policy missing (found %s)" % (name, s.get("restart")))
    targets = {str(p.get("target")) if isinstance(p, dict) else str(p).split(":")[-1].split("/")[0] for p in s.get("ports") or []}
    need({"8042", "4242"} <= targets, "%s: ports 8042 and 4242 must be published (found %s)" % (name, sorted(targets)))
    named = set(doc.get("volumes") or {})
    mounts = {}
    for v in s.get("volumes") or []:
        if isinstance(v, dict):
            mounts[v["target"]] = (v.get("source", ""), bool(v.get("read_only")))
        else:
            p = v.split(":")
            mounts[p[1]] = (p[0], len(p) > 2 and "ro" in p[2].split(","))
    db = mounts.get("/var/lib/orthanc/db")
    need(db and db[0] in named, "%s: /var/lib/orthanc/db must be a named volume (found %s, named %s)" % (name, db, sorted(named)))
    cfg = mounts.get("/etc/orthanc/orthanc.json")
    need(cfg and cfg[1], "%s: /etc/orthanc/orthanc.json must be mounted read-only (found %s)" % (name, cfg))
    need(cfg and os.path.isfile(cfg[0]), "%s: the mounted configuration %s does not exist" % (name, cfg and cfg[0]))
check(full, "docker-compose.yml", "400m")
check(constrained, "docker-compose.yml + docker-compose.constrained.yml", "300m")
for m in bad: print("FAIL: " + m)
sys.exit(1 if bad else 0)
PY
  if MINIPACS_PASSWORD= docker-compose -f $c config >/dev/null 2>&1; then
    echo "FAIL: docker-compose.yml must refuse to start without MINIPACS_PASSWORD"; rc=1
  fi
  [ $rc = 0 ] && echo "ok: compose files validate; 400m / 300m, ports, named volume, read-only config, restart"

  # Scale-out: PostgreSQL with its volume, two server processes on ONE storage volume with the
  # PostgreSQL index enabled and "Lock": false in their (read-only) configuration, a load
  # balancer publishing 8042 and 4242.
  local p=docker/docker-compose.postgresql.yml
  if ! MINIPACS_PASSWORD=check POSTGRES_PASSWORD=check docker-compose -f $p config > "$TMP/pg.yml" 2> "$TMP/compose.err"; then
    echo "FAIL: docker-compose config $p:"; cat "$TMP/compose.err"; return 1
  fi
  $PY - "$TMP/pg.yml" <<'PY' || rc=1
import json, os, re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1])); svcs = doc.get("services") or {}; bad = []
def need(c, m):
    if not c: bad.append(m)
pg = svcs.get("postgres") or {}
need(str(pg.get("image", "")).startswith("postgres:"), "scale-out: a postgres service is needed")
need(any(str(v.get("target") if isinstance(v, dict) else v.split(":")[1]) == "/var/lib/postgresql/data" for v in pg.get("volumes") or []),
     "scale-out: postgres must keep its data in a volume")
servers = {n: s for n, s in svcs.items() if str(s.get("image", "")).startswith("minipacs")}
need(len(servers) >= 2, "scale-out: at least two minipacs processes (found %s)" % sorted(servers))
storage = set()
for n, s in servers.items():
    m = {}
    for v in s.get("volumes") or []:
        if isinstance(v, dict):
            m[v["target"]] = v
        else:
            m[v.split(":")[1]] = {"source": v.split(":")[0]}
    storage.add((m.get("/var/lib/orthanc/db") or {}).get("source"))
    cfg = (m.get("/etc/orthanc/orthanc.json") or {}).get("source", "")
    need(os.path.isfile(cfg), "scale-out: %s: configuration %s missing" % (n, cfg))
    if os.path.isfile(cfg):
        text = re.sub(r"^\s*//.*$", "", open(cfg).read(), flags=re.M)
        pgc = json.loads(text).get("PostgreSQL") or {}
        need(pgc.get("EnableIndex") is True and pgc.get("Lock") is False,
             "scale-out: %s must enable the PostgreSQL index with Lock false" % n)
need(len(storage) == 1 and None not in storage, "scale-out: the processes must share one storage volume (found %s)" % storage)
lb = [s for n, s in svcs.items() if n not in servers and n != "postgres"]
ports = {str(p.get("target")) for s in lb for p in s.get("ports") or [] if isinstance(p, dict)}
need({"8042", "4242"} <= ports, "scale-out: a load balancer must publish 8042 and 4242 (found %s)" % sorted(ports))
for m in bad: print("FAIL: " + m)
sys.exit(1 if bad else 0)
PY
  [ $rc = 0 ] && echo "ok: scale-out compose file: postgres with a volume, two processes on one storage volume, a load balancer"

  # Every ORTHANC__ name written in docker/ must be a real top-level option: option names are
  # read from Orthanc.json.example when it exists, else from server/config.h's field comments.
  $PY - "$SRC" <<'PY' || rc=1
import glob, os, re, sys
src = sys.argv[1]
opts = set()
ex = os.path.join(src, "Orthanc.json.example")
if os.path.exists(ex):
    opts |= set(re.findall(r'^\s*"([A-Z][A-Za-z0-9]+)"\s*:', open(ex).read(), re.M))
opts |= set(re.findall(r"/\*\s*([A-Z][A-Za-z0-9]+)[,;)]", open(os.path.join(src, "server/config.h")).read()))
def snake(n): return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", n).upper()
known = {snake(o): o for o in opts}
bad = []
for f in sorted(glob.glob(os.path.join(src, "docker", "*"))) + [os.path.join(src, "README.md")]:
    for v in sorted(set(re.findall(r"ORTHANC__([A-Z0-9_]+)", open(f).read()))):
        if v.endswith("_") or v in ("OPTION", "OPTION_IN_UPPER_SNAKE_CASE", "UPPER_SNAKE_CASE"): continue
        if v not in known: bad.append("%s: ORTHANC__%s names no known option" % (os.path.relpath(f, src), v))
for m in bad: print("FAIL: " + m)
if not bad: print("ok: every ORTHANC__* name in docker/ maps to an option (%d options known)" % len(known))
sys.exit(1 if bad else 0)
PY
  # The health check script must be executable in git (COPY keeps the mode).
  if [ "$(git -C "$SRC" ls-files -s docker/healthcheck.sh | cut -c1-6)" = 100644 ]; then
    echo "FAIL: docker/healthcheck.sh is not executable in git"; rc=1
  fi
  return $rc
}

# dpkg owners of library paths, trying the usrmerge aliases (/lib vs /usr/lib): reads paths
# on stdin, prints "path package" for each path some package owns. One dpkg -S for all (one
# call per alias took minutes on a loaded machine: dpkg reads its whole file list each time).
owners() {
  $PY -c '
import os, subprocess, sys
paths = [l.strip() for l in sys.stdin if l.strip()]
alias = {}
for p in paths:
    r = os.path.realpath(p)
    alias[p] = [q for q in dict.fromkeys([p, r, p.removeprefix("/usr"), "/usr" + p, r.removeprefix("/usr"), "/usr" + r])
                if q.startswith("/")]
qs = sorted({q for v in alias.values() for q in v})
out = subprocess.run(["dpkg", "-S"] + qs, capture_output=True, text=True).stdout if qs else ""
own = {}
for line in out.splitlines():
    pkgs, _, path = line.partition(": ")
    if path and path not in own: own[path] = pkgs.split(",")[0].split(":")[0].strip()
for p in paths:
    pkg = next((own[q] for q in alias[p] if q in own), None)
    if pkg: print(p, pkg)
'
}

# Packages that debian:bookworm-slim always holds (priority required, or needed by apt) and
# that a binary may use without listing them: the C library, the C++ runtime and its helper.
SLIM_BASE="libc6 libgcc-s1 libstdc++6 zlib1g"

check_libs() {
  local bin=$1 rc=0
  [ -x "$bin" ] || { echo "FAIL: no binary at $bin"; return 1; }
  runtime_packages > "$TMP/runtime.txt"
  [ -s "$TMP/runtime.txt" ] || { echo "FAIL: no apt-get install line in the runtime stage"; return 1; }
  ldd "$bin" > "$TMP/ldd.txt" || { echo "FAIL: ldd $bin"; return 1; }
  if grep -q "not found" "$TMP/ldd.txt"; then echo "FAIL: unresolved libraries:"; grep "not found" "$TMP/ldd.txt"; return 1; fi
  objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}' > "$TMP/needed.txt"
  : > "$TMP/map.txt"
  local so arrow path rest
  awk '$1 !~ /^linux-(vdso|gate)/ { print ($2 == "=>" ? $3 : $1) }' "$TMP/ldd.txt" | owners > "$TMP/owners.txt"
  while read -r so arrow path rest; do
    case "$so" in linux-vdso*|linux-gate*) continue ;; esac
    [ "$arrow" = "=>" ] || path=$so                               # the dynamic loader line
    local pkg
    pkg=$(awk -v p="$path" '$1 == p { print $2; exit }' "$TMP/owners.txt")
    [ -n "$pkg" ] || { echo "FAIL: no Debian package owns $path"; rc=1; continue; }
    case "$(basename "$so")" in
      lib[atlu]san.so*|libubsan.so*)  # a sanitizer build: the image never carries these
        echo "note: ignoring sanitizer runtime $(basename "$so") ($pkg): the image builds Release"; continue ;;
    esac
    echo "$(basename "$so") $pkg" >> "$TMP/map.txt"
  done < "$TMP/ldd.txt"
  # Dependency closure of the runtime packages, from the installed packages' Depends.
  $PY - "$TMP/runtime.txt" "$TMP/needed.txt" "$TMP/map.txt" "$SLIM_BASE" <<'PY' || rc=1
import re, subprocess, sys
runtime = open(sys.argv[1]).read().split()
needed = set(open(sys.argv[2]).read().split())
lib2pkg = dict(l.split() for l in open(sys.argv[3]) if l.strip())
base = set(sys.argv[4].split())
# every installed package's Depends and Pre-Depends, from one dpkg-query
db = {}
q = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Status}\t${Depends}, ${Pre-Depends}\n"],
                   capture_output=True, text=True).stdout
for line in q.splitlines():
    name, status, dep = (line.split("\t") + ["", ""])[:3]
    if status == "installed": db[name] = dep
def deps(p):
    if p not in db: return None
    out = set()
    for alt in db[p].split(","):
        names = [re.sub(r"[\s(:].*", "", a.strip()) for a in alt.split("|") if a.strip()]
        for n in names:       # the alternative that is installed
            if n in db:
                out.add(n); break
    return out
closure, todo, bad = set(), list(runtime), []
for p in runtime:
    if deps(p) is None: bad.append("runtime package %s is not installed on this machine (cannot resolve its dependencies)" % p)
while todo:
    p = todo.pop()
    if p in closure: continue
    closure.add(p)
    todo += list(deps(p) or ())
direct = set(runtime) | base
for lib, pkg in sorted(lib2pkg.items()):
    if lib in needed:
        if pkg in closure and pkg not in direct:   # e.g. sanitizer builds link without --as-needed
            print("note: %s is linked directly but comes from %s, a dependency of the runtime packages" % (lib, pkg))
        elif pkg not in direct:
            bad.append("%s (linked directly) comes from %s: add it to the runtime stage's apt-get line" % (lib, pkg))
    elif pkg not in closure | base:
        bad.append("%s comes from %s, which no runtime package pulls in" % (lib, pkg))
used = set(lib2pkg.values())
for p in runtime:
    if p not in used:
        print("note: runtime package %s provides no library the binary loads (data or tool?)" % p)
for m in bad: print("FAIL: " + m)
if not bad:
    print("ok: %d libraries from %d packages, all in the runtime stage (%s), their dependencies or bookworm-slim's base"
          % (len(lib2pkg), len(used), " ".join(runtime)))
sys.exit(1 if bad else 0)
PY
  return $rc
}

# The first Debian mirror apt is configured with (deb822 or one-line format).
apt_mirror() {
  local m
  m=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || m=$(grep -hE '^deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

check_rootfs() {
  local bin=$1
  [ -x "$bin" ] || { echo "FAIL: no binary at $bin"; return 1; }
  [ "$(id -u)" = 0 ] || { echo "FAIL: the rootfs check needs root (debootstrap, chroot)"; return 1; }
  command -v debootstrap >/dev/null || { echo "FAIL: debootstrap not installed (scripts/deps.sh)"; return 1; }
  local mirror R="$TMP/rootfs" t0=$SECONDS
  mirror=$(apt_mirror)
  curl -sfI --max-time 10 "$mirror/dists/bookworm/Release" >/dev/null \
    || { echo "FAIL: the apt mirror $mirror is unreachable: the rootfs check needs it"; return 1; }
  if ! debootstrap --variant=minbase bookworm "$R" "$mirror" > "$TMP/debootstrap.log" 2>&1; then
    echo "FAIL: debootstrap bookworm from $mirror:"; tail -20 "$TMP/debootstrap.log"; return 1
  fi
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  echo "ok: minimal bookworm from $mirror in $((SECONDS - t0)) s"

  # Replay the runtime stage: RUN in the chroot, COPY from the repository (the build stage's
  # binary is the one under test), ENV into the environment, USER/WORKDIR for the start.
  parse_dockerfile > "$TMP/stages.json"
  $PY - "$TMP/stages.json" "$bin" > "$TMP/replay.sh" <<'PY'
import json, shlex, sys
st = json.load(open(sys.argv[1]))[-1]; binary = sys.argv[2]
q = shlex.quote
print('set -e'); print('user=root; workdir=/')
for instr, args in st["ins"]:
    if instr == "RUN":
        print('echo %s' % q("replay: RUN " + args[:100]))
        print('chroot "$R" /bin/sh -c %s > "$TMP/replay.log" 2>&1 || { tail -20 "$TMP/replay.log"; exit 1; }' % q(args))
    elif instr == "COPY":
        w = [t for t in args.split() if not t.startswith("--")]
        srcs, dst = w[:-1], w[-1]
        if "--from=" in args: srcs = [binary]
        for s in srcs:
            print('mkdir -p "$R"%s && cp -p %s "$R"%s' % (q(dst.rsplit("/", 1)[0] or "/"), q(s), q(dst)))
    elif instr == "ENV":
        if "=" in args.split()[0]:
            for tok in shlex.split(args):
                k, _, v = tok.partition("=")
                print('export %s=%s' % (k, q(v)))
        else:
            k, _, v = args.partition(" ")
            print('export %s=%s' % (k, q(v.strip())))
    elif instr == "USER": print('user=%s' % q(args))
    elif instr == "WORKDIR": print('workdir=%s' % q(args))
    elif instr in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
        v = args
        if instr == "HEALTHCHECK": v = v[v.index("CMD") + 3:].strip()
        argv = json.loads(v) if v.startswith("[") else ["/bin/sh", "-c", v]
        print('%s=(%s)' % (instr.lower(), " ".join(q(a) for a in argv)))
PY
  local user workdir entrypoint=() cmd=() healthcheck=()
  # shellcheck disable=SC1091
  ( export R TMP; bash "$TMP/replay.sh" ) || { echo "FAIL: replaying the runtime stage"; return 1; }
  eval "$(grep -E '^(user|workdir|entrypoint|cmd|healthcheck)=' "$TMP/replay.sh")"
  # A sanitizer build (MINIPACS_SANITIZE / TSan) needs its runtime, which the image never has.
  local san
  san=$(ldd "$bin" | awk '$1 ~ /^lib(a|t|l|ub)san\.so/ {print $3}' | owners | awk '{print $2}' | sort -u | tr '\n' ' ')
  if [ -n "$san" ]; then
    echo "note: sanitizer build: adding $san to the tree (not part of the image)"
    chroot "$R" /bin/sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $san" > "$TMP/replay.log" 2>&1 \
      || { tail -20 "$TMP/replay.log"; echo "FAIL: installing $san"; return 1; }
  fi
  echo "ok: runtime stage replayed ($(runtime_packages | tr '\n' ' ')) in $((SECONDS - t0)) s, user $user"

  # Start it as PID 1 of fresh PID and mount namespaces (proc mounted there, gone with it).
  local port dport pid child uid gid
  uid=$(chroot "$R" id -u "$user") && gid=$(chroot "$R" id -g "$user") \
    || { echo "FAIL: USER $user does not exist in the image"; return 1; }
  port=$($PY "$SRC/tests/tools/free_port.py" "$TMP/ports")   # below the ephemeral range: see there
  dport=$($PY "$SRC/tests/tools/free_port.py" "$TMP/ports")
  local envs=(ORTHANC__HTTP_PORT="$port" ORTHANC__DICOM_PORT="$dport" ORTHANC__SYNC_STORAGE_AREA=false
              ORTHANC__REGISTERED_USERS='{"check": "check-pw"}')
  env "${envs[@]}" unshare --pid --mount --fork --mount-proc="$R/proc" \
    chroot --userspec="$uid:$gid" "$R" /bin/sh -c 'cd "$0" && exec "$@"' "$workdir" "${entrypoint[@]}" "${cmd[@]}" \
    > "$TMP/server.log" 2>&1 &
  pid=$!
  local up=0
  for _ in $(seq 1 200); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/system"; then up=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  child=$(pgrep -P $pid || true)
  local rc=0
  stop() { [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done; kill -KILL $pid 2>/dev/null || true; }
  if [ $up = 0 ]; then
    echo "FAIL: the server did not answer in the bookworm tree:"; tail -30 "$TMP/server.log"; stop; return 1
  fi
  [ "$(ps -o uid= -p "$child" 2>/dev/null | tr -d ' ')" = "$uid" ] || { echo "FAIL: the server does not run as $user ($uid)"; rc=1; }
  # The HEALTHCHECK, run inside the tree as the image would.
  if env "${envs[@]}" chroot --userspec="$uid:$gid" "$R" "${healthcheck[@]}"; then
    echo "ok: HEALTHCHECK healthy"
  else
    echo "FAIL: HEALTHCHECK unhealthy against a running server"; rc=1
  fi
  # A real upload exercises DCMTK and its dictionary (data files in libdcmtk17).
  local f="${PYDICOM_FILES:-/usr/lib/python3/dist-packages/pydicom/data/test_files}/CT_small.dcm" code
  code=$(curl -s -o "$TMP/up.json" -w '%{http_code}' -u check:check-pw -X POST --data-binary @"$f" "http://127.0.0.1:$port/instances")
  if [ "$code" = 200 ] && grep -q '"Success"' "$TMP/up.json"; then
    echo "ok: upload stored in the tree"
  else
    echo "FAIL: upload answered $code: $(head -c 300 "$TMP/up.json")"; rc=1
  fi
  local vol="$R/var/lib/orthanc/db"
  if [ -n "$(find "$vol" -name 'index.sqlite' 2>/dev/null)" ]; then
    local wrong
    wrong=$(find "$vol" ! -uid "$uid" | head -3)
    [ -z "$wrong" ] || { echo "FAIL: files in the volume not owned by $user: $wrong"; rc=1; }
  else
    echo "FAIL: no index.sqlite in the volume /var/lib/orthanc/db"; rc=1
  fi
  # SIGTERM to PID 1 must stop it cleanly (Docker's stop).
  kill -TERM "$child" 2>/dev/null || true
  local code_exit=""
  for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
  if kill -0 $pid 2>/dev/null; then
    echo "FAIL: SIGTERM did not stop the server running as PID 1"; rc=1; stop
  else
    wait $pid && code_exit=0 || code_exit=$?
    [ "$code_exit" = 0 ] && echo "ok: SIGTERM to PID 1 stops it (exit 0)" || { echo "FAIL: exit $code_exit after SIGTERM"; rc=1; }
  fi
  [ $rc = 0 ] || { echo "---- server log ----"; tail -30 "$TMP/server.log"; }
  echo "rootfs check: $((SECONDS - t0)) s"
  return $rc
}

TMP=$(mktemp -d /tmp/mp-docker-check.XXXXXX)
trap 'rm -rf --one-file-system "$TMP"' EXIT
case "${1:-}" in
  files) check_files ;;
  libs) check_libs "${2:?usage: docker-check.sh libs BIN}" ;;
  rootfs) check_rootfs "${2:?usage: docker-check.sh rootfs BIN}" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
