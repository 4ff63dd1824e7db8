#!/usr/bin/env python3
"""check_seed.py - every Cloud Run setting in deploy/ checked against the design document.

    python3 tests/deploy/check_seed.py [--repo DIR] [--seed FILE]

The design document is shared/seed.md next to the repository
($(git rev-parse --show-toplevel)/../shared/seed.md, or $WA_SEED_FILE, or --seed). The expected
values are read from ITS text, not written here: the two "Configuration Comparison" blocks
(Memory, CPU, Min/Max Instances, Concurrency, No CPU Throttling, CPU Boost) and the
"Environment Variables" bullets (`NAME`: dev (dev) / prod (prod)). The seed's own per-topic
bullets ("- **Development**: 2Gi") must agree with its blocks.

Checked files: deploy/cloudbuild-{dev,prod}.yaml (the `gcloud run deploy` step), and
deploy/service-{dev,prod}.yaml (Knative: annotations, containerConcurrency, timeoutSeconds,
limits, env, secrets, probes), the two cross-checked (service name, secrets, port), and
deploy/Dockerfile (runtime stage on debian:12-slim, no -dev package, non-root, EXPOSE, HEALTHCHECK).

Then the checker checks itself: each of a list of single edits to a temporary copy of the files
(and one to a copy of the seed) must make it fail. Exit 0 when all is well, 1 otherwise.

Needs PyYAML (Debian: python3-yaml).

SPDX-License-Identifier: GPL-3.0-or-later
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("check_seed: PyYAML is missing (Debian package python3-yaml; scripts/deps.sh installs it)")

ENVS = ("dev", "prod")
SEED_HEADINGS = {"dev": "Development", "prod": "Production"}

# Not in the seed: this project's choices, stated once here.
REQUEST_TIMEOUT_S = 3600  # Cloud Run's maximum: event-stream clients stay connected an hour
CONTAINER_PORT = 8080
HEALTH_PATH = "/health"
SECRET_ENV = ("GCS_BUCKET", "API_KEY")  # from Secret Manager, never plain env
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")  # set by Cloud Run


class Fail(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The seed


def find_seed(repo, explicit):
    if explicit:
        return explicit
    if os.environ.get("WA_SEED_FILE"):
        return os.environ["WA_SEED_FILE"]
    top = repo
    try:
        top = subprocess.run(["git", "-C", repo, "rev-parse", "--show-toplevel"], check=True,
                             capture_output=True, text=True).stdout.strip() or repo
    except (OSError, subprocess.CalledProcessError):
        pass
    return os.path.join(os.path.dirname(os.path.abspath(top)), "shared", "seed.md")


def seed_blocks(text):
    """{'dev': {'Memory': '2Gi', ...}, 'prod': {...}} from the fenced blocks under
    '### Development Environment' / '### Production Environment'."""
    out = {}
    for env, word in SEED_HEADINGS.items():
        m = re.search(r"^###\s+" + word + r" Environment\b[^\n]*\n+```[a-z]*\n(.*?)^```",
                      text, re.M | re.S)
        if not m:
            raise Fail("seed: no fenced config block under '### %s Environment'" % word)
        kv = {}
        for line in m.group(1).splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                kv[k.strip()] = v.strip()
        out[env] = kv
    return out


def as_bool_enabled(v, what):
    if v.lower() in ("enabled", "true", "yes"):
        return True
    if v.lower() in ("disabled", "false", "no"):
        return False
    raise Fail("seed: %s: cannot read '%s' as enabled/disabled" % (what, v))


def leading_int(v, what):
    m = re.match(r"\s*(\d+)\b", v)
    if not m:
        raise Fail("seed: %s: no number in '%s'" % (what, v))
    return int(m.group(1))


def seed_settings(text):
    blocks = seed_blocks(text)
    want_keys = ("Memory", "CPU", "Min Instances", "Max Instances", "Concurrency",
                 "No CPU Throttling", "CPU Boost")
    res = {}
    for env in ENVS:
        b = blocks[env]
        for k in want_keys:
            if k not in b:
                raise Fail("seed: %s block has no '%s:' line" % (SEED_HEADINGS[env], k))
        mem = b["Memory"]
        if not re.fullmatch(r"\d+(Mi|Gi)", mem):
            raise Fail("seed: %s Memory '%s' is not like 2Gi" % (env, mem))
        res[env] = {
            "memory": mem,
            "cpu": leading_int(b["CPU"], env + " CPU"),
            "min": leading_int(b["Min Instances"], env + " Min Instances"),
            "max": leading_int(b["Max Instances"], env + " Max Instances"),
            "concurrency": leading_int(b["Concurrency"], env + " Concurrency"),
            "no_cpu_throttling": as_bool_enabled(b["No CPU Throttling"], env + " No CPU Throttling"),
            "cpu_boost": as_bool_enabled(b["CPU Boost"], env + " CPU Boost"),
        }
    return res


def seed_section(text, title_word):
    """Body of the '### N. <title_word>...' section (up to the next heading)."""
    m = re.search(r"^###\s+\d+\.\s+" + title_word + r"[^\n]*\n(.*?)(?=^#)", text, re.M | re.S)
    if not m:
        raise Fail("seed: no '### N. %s' section" % title_word)
    return m.group(1)


def seed_self_consistency(text, settings):
    """The per-topic bullets ('- **Development**: 2Gi (...)') must agree with the blocks."""
    checks = (("Memory Configuration", lambda v, s: v.split()[0] == s["memory"]),
              ("CPU Configuration", lambda v, s: leading_int(v, "CPU bullet") == s["cpu"]),
              ("Instance Configuration",
               lambda v, s: re.match(r"Min (\d+), Max (\d+)", v) is not None and
               (int(re.match(r"Min (\d+), Max (\d+)", v).group(1)),
                int(re.match(r"Min (\d+), Max (\d+)", v).group(2))) == (s["min"], s["max"])),
              ("Concurrency Settings", lambda v, s: leading_int(v, "concurrency bullet") == s["concurrency"]))
    for title, ok in checks:
        body = seed_section(text, title)
        for env, word in SEED_HEADINGS.items():
            m = re.search(r"^- \*\*" + word + r"\*\*:\s*(.+)$", body, re.M)
            if not m:
                raise Fail("seed: section '%s' has no '- **%s**:' bullet" % (title, word))
            if not ok(m.group(1).strip(), settings[env]):
                raise Fail("seed disagrees with itself: '%s' says %s: '%s', its config block says %r"
                           % (title, word, m.group(1).strip(), settings[env]))


def seed_env(text):
    """{'dev': {'MEMORY_THRESHOLD': '0.75', ...}, 'prod': {...}} from the env-var bullets:
    '- `NAME`: A (dev) / B (prod) - why' or '- `NAME`: A - why' (same for both)."""
    body = re.search(r"^###\s+\d+\.\s+Environment Variables\s*\n(.*?)(?=^## )", text, re.M | re.S)
    if not body:
        raise Fail("seed: no '### N. Environment Variables' section")
    res = {e: {} for e in ENVS}
    unit = r"(?:ms)?"
    for m in re.finditer(r"^\s*-\s+`([A-Z][A-Z0-9_]*)`:\s*(.+)$", body.group(1), re.M):
        name, rest = m.group(1), m.group(2)
        spec = rest.split(" - ", 1)[0].strip()
        two = re.fullmatch(r"(\S+?)" + unit + r"\s*\(dev\)\s*/\s*(\S+?)" + unit + r"\s*\(prod\)", spec)
        one = re.fullmatch(r"(\S+?)" + unit, spec)
        if two:
            res["dev"][name], res["prod"][name] = two.group(1), two.group(2)
        elif one:
            res["dev"][name] = res["prod"][name] = one.group(1)
        else:
            raise Fail("seed: cannot read the value of `%s` from '%s'" % (name, spec))
    if len(res["dev"]) < 7:
        raise Fail("seed: only %d environment variables found (%s); the format changed?"
                   % (len(res["dev"]), ", ".join(sorted(res["dev"]))))
    return res


def load_seed(path):
    if not os.path.isfile(path):
        raise Fail("seed: the design document %s is missing: it is shared/seed.md next to the "
                   "repository (or set WA_SEED_FILE / --seed)" % path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    settings = seed_settings(text)
    seed_self_consistency(text, settings)
    return settings, seed_env(text)


# ---------------------------------------------------------------------------------------------
# The deploy files


def load_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise Fail("%s: %s" % (path, e))
    except yaml.YAMLError as e:
        raise Fail("%s: not valid YAML: %s" % (path, e))


def subst(s, table):
    """Cloud Build user substitutions ${_X} / $_X, from the file's own defaults."""
    return re.sub(r"\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)",
                  lambda m: str(table.get(m.group(1) or m.group(2), m.group(0))), s)


def parse_flags(args):
    """gcloud args after the positionals: {'--memory': '2Gi', '--cpu-boost': True, ...};
    a flag given twice is an error (which one wins is not obvious to a reader)."""
    flags, pos, i = {}, [], 0
    while i < len(args):
        a = str(args[i])
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
            elif i + 1 < len(args) and not str(args[i + 1]).startswith("--") and \
                    a not in ("--no-cpu-throttling", "--cpu-throttling", "--cpu-boost",
                              "--no-cpu-boost", "--to-latest", "--all-tags"):
                k, v = a, str(args[i + 1])
                i += 1
            else:
                k, v = a, True
            if k in flags:
                raise Fail("flag %s given twice" % k)
            flags[k] = v
        else:
            pos.append(a)
        i += 1
    return pos, flags


def parse_kv_list(s, what):
    """gcloud list form 'A=1,B=2' (the ^DELIM^ form is refused: keep it plain)."""
    if s.startswith("^"):
        raise Fail("%s: custom delimiter syntax not supported by this check" % what)
    out = {}
    for item in s.split(","):
        if "=" not in item:
            raise Fail("%s: '%s' is not NAME=VALUE" % (what, item))
        k, v = item.split("=", 1)
        if k in out:
            raise Fail("%s: %s given twice" % (what, k))
        out[k] = v
    return out


def check_env_dict(errs, where, got, want):
    for k, v in want.items():
        if k not in got:
            errs.append("%s: %s missing (seed: %s)" % (where, k, v))
        elif str(got[k]) != v:
            errs.append("%s: %s=%s, seed says %s" % (where, k, got[k], v))
    for k in got:
        if k in RESERVED_ENV:
            errs.append("%s: %s is reserved on Cloud Run" % (where, k))
        if k in SECRET_ENV:
            errs.append("%s: %s must come from Secret Manager, not a plain value" % (where, k))


def check_cloudbuild(path, env, st, want_env):
    doc = load_yaml(path)
    errs = []
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise Fail("%s: no steps" % path)
    subs = doc.get("substitutions") or {}
    info = {}

    def step_args(step):
        return [subst(str(a), subs) for a in (step.get("args") or [])]

    deploy = [s for s in doc["steps"] if step_args(s)[:2] == ["run", "deploy"]]
    if len(deploy) != 1:
        raise Fail("%s: want exactly one 'gcloud run deploy' step, found %d" % (path, len(deploy)))
    d = deploy[0]
    if d.get("entrypoint") != "gcloud":
        errs.append("%s: deploy step entrypoint is %r, not gcloud" % (path, d.get("entrypoint")))
    pos, fl = parse_flags(step_args(d)[2:])
    if len(pos) != 1:
        raise Fail("%s: deploy step wants one service name, got %r" % (path, pos))
    info["service"] = pos[0]
    where = "%s (gcloud run deploy)" % path

    def flag_eq(flag, want, norm=str):
        v = fl.get(flag)
        if v is None or v is True:
            errs.append("%s: %s missing (want %s)" % (where, flag, want))
        elif norm(v) != norm(want):
            errs.append("%s: %s=%s, want %s" % (where, flag, v, want))

    flag_eq("--memory", st["memory"])
    flag_eq("--cpu", st["cpu"], lambda v: str(v).rstrip("0").rstrip(".") if "." in str(v) else str(v))
    flag_eq("--min-instances", st["min"])
    flag_eq("--max-instances", st["max"])
    flag_eq("--concurrency", st["concurrency"])
    flag_eq("--timeout", REQUEST_TIMEOUT_S, lambda v: str(v)[:-1] if str(v).endswith("s") else str(v))
    flag_eq("--port", CONTAINER_PORT)
    for on, off, want in (("--no-cpu-throttling", "--cpu-throttling", st["no_cpu_throttling"]),
                          ("--cpu-boost", "--no-cpu-boost", st["cpu_boost"])):
        have = fl.get(on) is True and off not in fl
        if have != want:
            errs.append("%s: %s must be %s (and %s absent)" % (where, on, "set" if want else "unset", off))
    if "--update-env-vars" in fl or "--env-vars-file" in fl:
        errs.append("%s: use --set-env-vars only (the full list, nothing inherited)" % where)
    if not isinstance(fl.get("--set-env-vars"), str):
        errs.append("%s: --set-env-vars missing" % where)
    else:
        check_env_dict(errs, where, parse_kv_list(fl["--set-env-vars"], where), want_env)
    secrets = {}
    if not isinstance(fl.get("--set-secrets"), str):
        errs.append("%s: --set-secrets missing" % where)
    else:
        secrets = parse_kv_list(fl["--set-secrets"], where + " --set-secrets")
    for k in SECRET_ENV:
        if k not in secrets:
            errs.append("%s: --set-secrets has no %s" % (where, k))
        elif not re.fullmatch(r"[A-Za-z0-9_-]+:(latest|\d+)", secrets[k]):
            errs.append("%s: --set-secrets %s=%s is not SECRET:VERSION" % (where, k, secrets[k]))
    info["secrets"] = {k: tuple(v.split(":", 1)) for k, v in secrets.items() if ":" in v}

    # build -> push -> deploy of the same Artifact Registry image
    image = fl.get("--image")
    ar = r"[a-z0-9-]+-docker\.pkg\.dev/\$(\{PROJECT_ID\}|PROJECT_ID)/[a-z0-9-]+/[a-z0-9-]+"
    if not isinstance(image, str) or not re.fullmatch(ar + r":\S+", image):
        errs.append("%s: --image %r is not an Artifact Registry path REGION-docker.pkg.dev/"
                    "$PROJECT_ID/REPO/IMAGE:TAG" % (where, image))
    else:
        builds = [step_args(s) for s in doc["steps"] if step_args(s)[:1] == ["build"]]
        pushes = [step_args(s) for s in doc["steps"] if step_args(s)[:1] == ["push"]]
        tags = [subst(a.split("=", 1)[1], subs) for b in builds for a in b if a.startswith("--tag=")]
        if image not in tags:
            errs.append("%s: the deployed image %s is not built by a build step (tags %r)"
                        % (path, image, tags))
        if not any(b and b[-1] == "." and "--file=deploy/Dockerfile" in b for b in builds):
            errs.append("%s: no 'docker build --file=deploy/Dockerfile .' step" % path)
        repo_img = image.rsplit(":", 1)[0]
        if not any(image in p or (repo_img in p and "--all-tags" in p) for p in pushes):
            errs.append("%s: the deployed image %s is not pushed before the deploy" % (path, image))
        order = [step_args(s)[:2] for s in doc["steps"]]
        if order.index(["run", "deploy"]) < max(i for i, o in enumerate(order) if o[:1] == ["push"]):
            errs.append("%s: deploy comes before push" % path)
    return errs, info


def dig(doc, *keys):
    for k in keys:
        if isinstance(k, int):
            if not isinstance(doc, list) or len(doc) <= k:
                return None
        elif not isinstance(doc, dict) or k not in doc:
            return None
        doc = doc[k]
    return doc


def check_service(path, env, st, want_env):
    doc = load_yaml(path)
    errs = []
    info = {}
    if dig(doc, "apiVersion") != "serving.knative.dev/v1" or dig(doc, "kind") != "Service":
        errs.append("%s: not a serving.knative.dev/v1 Service" % path)
    info["service"] = dig(doc, "metadata", "name")
    ann = dig(doc, "spec", "template", "metadata", "annotations") or {}

    def ann_eq(key, want):
        v = ann.get(key)
        if not isinstance(v, str):
            errs.append("%s: annotation %s is %r; want the string \"%s\"" % (path, key, v, want))
        elif v != want:
            errs.append("%s: annotation %s: \"%s\", want \"%s\"" % (path, key, v, want))

    ann_eq("autoscaling.knative.dev/minScale", str(st["min"]))
    ann_eq("autoscaling.knative.dev/maxScale", str(st["max"]))
    ann_eq("run.googleapis.com/cpu-throttling", "false" if st["no_cpu_throttling"] else "true")
    ann_eq("run.googleapis.com/startup-cpu-boost", "true" if st["cpu_boost"] else "false")
    spec = dig(doc, "spec", "template", "spec") or {}
    if spec.get("containerConcurrency") != st["concurrency"]:
        errs.append("%s: containerConcurrency %r, want %d" % (path, spec.get("containerConcurrency"), st["concurrency"]))
    if spec.get("timeoutSeconds") != REQUEST_TIMEOUT_S:
        errs.append("%s: timeoutSeconds %r, want %d" % (path, spec.get("timeoutSeconds"), REQUEST_TIMEOUT_S))
    conts = spec.get("containers") or []
    if len(conts) != 1:
        raise Fail("%s: want exactly one container, found %d" % (path, len(conts)))
    c = conts[0]
    lim = dig(c, "resources", "limits") or {}
    if str(lim.get("memory")) != st["memory"]:
        errs.append("%s: limits.memory %r, want %s" % (path, lim.get("memory"), st["memory"]))
    cpu = str(lim.get("cpu"))
    if cpu not in (str(st["cpu"]), "%dm" % (st["cpu"] * 1000)):
        errs.append("%s: limits.cpu %r, want \"%d\"" % (path, lim.get("cpu"), st["cpu"]))
    ports = c.get("ports") or []
    if [p.get("containerPort") for p in ports] != [CONTAINER_PORT]:
        errs.append("%s: containerPort %r, want [%d]" % (path, [p.get("containerPort") for p in ports], CONTAINER_PORT))
    plain, secrets = {}, {}
    for e in c.get("env") or []:
        n = e.get("name")
        if n in plain or n in secrets:
            errs.append("%s: env %s twice" % (path, n))
        ref = dig(e, "valueFrom", "secretKeyRef")
        if ref is not None:
            secrets[n] = (ref.get("name"), str(ref.get("key")))
        elif "value" in e:
            if not isinstance(e["value"], str):
                errs.append("%s: env %s value %r must be a quoted string" % (path, n, e["value"]))
            plain[n] = e["value"]
        else:
            errs.append("%s: env %s has neither value nor secretKeyRef" % (path, n))
    check_env_dict(errs, path, plain, want_env)
    for k in SECRET_ENV:
        if k not in secrets:
            errs.append("%s: %s is not a secretKeyRef" % (path, k))
    info["secrets"] = secrets
    for probe in ("startupProbe", "livenessProbe"):
        hg = dig(c, probe, "httpGet")
        if not hg:
            errs.append("%s: %s.httpGet missing" % (path, probe))
            continue
        if hg.get("path") != HEALTH_PATH or hg.get("port", CONTAINER_PORT) != CONTAINER_PORT:
            errs.append("%s: %s GET %s port %s, want %s port %d"
                        % (path, probe, hg.get("path"), hg.get("port"), HEALTH_PATH, CONTAINER_PORT))
        p = c[probe]
        if p.get("timeoutSeconds", 1) > p.get("periodSeconds", 10):
            errs.append("%s: %s timeoutSeconds exceeds periodSeconds (Cloud Run refuses it)" % (path, probe))
    return errs, info


def dockerfile_stages(text):
    """[(base, alias, [instructions joined across continuation lines])]."""
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        cur += " " + s[:-1] if s.endswith("\\") else " " + s
        if not s.endswith("\\"):
            lines.append(cur.strip())
            cur = ""
    stages = []
    for ins in lines:
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", ins, re.I)
        if m:
            stages.append((m.group(1), m.group(2), []))
        elif stages:
            stages[-1][2].append(ins)
    return stages


def check_dockerfile(path):
    errs = []
    try:
        with open(path, encoding="utf-8") as f:
            stages = dockerfile_stages(f.read())
    except OSError as e:
        raise Fail("%s: %s" % (path, e))
    if len(stages) < 2:
        return ["%s: not multi-stage" % path]
    base, _, ins = stages[-1]
    if base != "debian:12-slim":
        errs.append("%s: runtime stage is FROM %s, want debian:12-slim" % (path, base))
    if not stages[0][0].startswith("debian:12"):
        errs.append("%s: build stage is FROM %s, want Debian 12" % (path, stages[0][0]))
    inst = [i for i in ins if i.upper().startswith("RUN") and "apt-get install" in i]
    if len(inst) != 1:
        errs.append("%s: runtime stage wants exactly one apt-get install RUN" % path)
    else:
        pk = inst[0].split("apt-get install", 1)[1].split("&&", 1)[0].split()
        pk = [p for p in pk if not p.startswith("-")]
        if not pk or any(p.endswith("-dev") or p in ("curl", "wget", "build-essential") for p in pk):
            errs.append("%s: runtime packages %r: none may be -dev or a build/fetch tool" % (path, pk))
    user = [i.split(None, 1)[1] for i in ins if i.upper().startswith("USER ")]
    if not user or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user[-1]):
        errs.append("%s: runtime USER %r, want a non-root numeric uid[:gid]" % (path, user[-1:] or None))
    if "EXPOSE %d" % CONTAINER_PORT not in ins:
        errs.append("%s: no EXPOSE %d in the runtime stage" % (path, CONTAINER_PORT))
    hc = [i for i in ins if i.upper().startswith("HEALTHCHECK")]
    if not hc or HEALTH_PATH not in hc[-1]:
        errs.append("%s: no HEALTHCHECK on %s in the runtime stage" % (path, HEALTH_PATH))
    return errs


def check_all(deploy_dir, seed_path):
    """List of error strings (empty: all good)."""
    try:
        settings, env = load_seed(seed_path)
    except Fail as e:
        return [str(e)]
    errs = []
    for e in ENVS:
        try:
            cerr, cinfo = check_cloudbuild(os.path.join(deploy_dir, "cloudbuild-%s.yaml" % e), e, settings[e], env[e])
            serr, sinfo = check_service(os.path.join(deploy_dir, "service-%s.yaml" % e), e, settings[e], env[e])
        except Fail as ex:
            errs.append(str(ex))
            continue
        errs += cerr + serr
        if cinfo["service"] != sinfo["service"] or not str(sinfo["service"]).endswith("-" + e):
            errs.append("%s: service name %r (cloudbuild) vs %r (service yaml)" % (e, cinfo["service"], sinfo["service"]))
        for k in SECRET_ENV:
            if k in cinfo["secrets"] and k in sinfo["secrets"] and cinfo["secrets"][k] != sinfo["secrets"][k]:
                errs.append("%s: secret for %s is %s in cloudbuild, %s in service yaml"
                            % (e, k, ":".join(cinfo["secrets"][k]), ":".join(sinfo["secrets"][k])))
    try:
        errs += check_dockerfile(os.path.join(deploy_dir, "Dockerfile"))
    except Fail as ex:
        errs.append(str(ex))
    return errs


# ---------------------------------------------------------------------------------------------
# Self-check: single edits that must each be caught, with the complaint each must produce.
# (file, regex, replacement, expected substring of an error)

MUTATIONS = (
    ("cloudbuild-dev.yaml", r"--concurrency=25\b", "--concurrency=80", "--concurrency=80, want 25"),
    ("cloudbuild-dev.yaml", r"--memory=2Gi\b", "--memory=4Gi", "--memory=4Gi, want 2Gi"),
    ("cloudbuild-dev.yaml", r"MEMORY_DEBUG=true\b", "MEMORY_DEBUG=false", "MEMORY_DEBUG=false, seed says true"),
    ("cloudbuild-dev.yaml", r"--max-instances=1\b", "--max-instances=2", "--max-instances=2, want 1"),
    ("cloudbuild-dev.yaml", r"--min-instances=1\b", "--min-instances=0", "--min-instances=0, want 1"),
    ("cloudbuild-dev.yaml", r"--cpu=1\b", "--cpu=2", "--cpu=2, want 1"),
    ("cloudbuild-dev.yaml", r"(--image=\S+):\$\{BUILD_ID\}", r"\g<1>:latest", "is not built by a build step"),
    ("cloudbuild-prod.yaml", r"MEMORY_THRESHOLD=0\.8\b", "MEMORY_THRESHOLD=0.75", "MEMORY_THRESHOLD=0.75, seed says 0.8"),
    ("cloudbuild-prod.yaml", r"\n\s*- --no-cpu-throttling\n", "\n", "--no-cpu-throttling must be set"),
    ("cloudbuild-prod.yaml", r"\n\s*- --cpu-boost\n", "\n      - --no-cpu-boost\n", "--cpu-boost must be set"),
    ("cloudbuild-prod.yaml", r"WS_KEEPALIVE_INTERVAL=15000\b", "WS_KEEPALIVE_INTERVAL=20000", "WS_KEEPALIVE_INTERVAL=20000, seed says 15000"),
    ("cloudbuild-prod.yaml", r"--timeout=3600\b", "--timeout=300", "--timeout=300, want 3600"),
    ("cloudbuild-prod.yaml", r",API_KEY=[^,\s]+", "", "--set-secrets has no API_KEY"),
    ("cloudbuild-prod.yaml", r",HEALTH_CHECK_INTERVAL=60000", "", "HEALTH_CHECK_INTERVAL missing"),
    ("service-dev.yaml", r'minScale: "1"', 'minScale: "0"', 'minScale: "0", want "1"'),
    ("service-dev.yaml", r'maxScale: "1"', "maxScale: 1", "maxScale is 1; want the string"),
    ("service-dev.yaml", r'(name: SESSION_BACKUP_INTERVAL\n\s*value: )"60000"', r'\g<1>"120000"',
     "SESSION_BACKUP_INTERVAL=120000, seed says 60000"),
    ("service-dev.yaml", r"memory: 2Gi\b", "memory: 1Gi", "limits.memory '1Gi', want 2Gi"),
    ("service-dev.yaml", r"timeoutSeconds: 3600\b", "timeoutSeconds: 300", "timeoutSeconds 300, want 3600"),
    ("service-prod.yaml", r'cpu-throttling: "false"', 'cpu-throttling: "true"', 'cpu-throttling: "true", want "false"'),
    ("service-prod.yaml", r"containerConcurrency: 25\b", "containerConcurrency: 50", "containerConcurrency 50, want 25"),
    ("service-prod.yaml", r'startup-cpu-boost: "true"', 'startup-cpu-boost: "false"', 'startup-cpu-boost: "false", want "true"'),
    ("service-prod.yaml", r'(name: HEALTH_CHECK_INTERVAL\n\s*value: )"60000"', r'\g<1>"30000"',
     "HEALTH_CHECK_INTERVAL=30000, seed says 60000"),
    ("service-prod.yaml", r"(livenessProbe:\n\s*httpGet:\n\s*path: )/health", r"\g<1>/ready", "livenessProbe GET /ready"),
    ("service-prod.yaml", r"(startupProbe:\n\s*httpGet:\n\s*path: /health\n\s*port: )8080", r"\g<1>9090",
     "startupProbe GET /health port 9090"),
    ("service-prod.yaml", r"name: wagate-prod-api-key", "name: wagate-dev-api-key", "secret for API_KEY is"),
    ("Dockerfile", r"USER 10001:10001", "USER root", "want a non-root numeric uid"),
    ("Dockerfile", r"(\n\s+)libuv1 \\\n", r"\1libuv1-dev \\\n", "none may be -dev"),
    ("Dockerfile", r"FROM debian:12-slim", "FROM debian:11-slim", "want debian:12-slim"),
)

# Edits to a copy of the seed that the unchanged deploy files must then fail: the expected
# values come from the seed. ([(regex, replacement)...], expected substring of an error)
SEED_BLOCK_PROD_CONCURRENCY = r"(### Production Environment[^\n]*\n+```yaml\n(?:.*\n)*?Concurrency: )25"
SEED_MUTATIONS = (
    ([(SEED_BLOCK_PROD_CONCURRENCY, r"\g<1>30"),
      (r"(### 4\. Concurrency(?:.*\n)*?- \*\*Production\*\*: )25", r"\g<1>30")],
     "cloudbuild-prod.yaml (gcloud run deploy): --concurrency=25, want 30"),
    ([(SEED_BLOCK_PROD_CONCURRENCY, r"\g<1>30")], "seed disagrees with itself"),
    ([(r"(### Development Environment[^\n]*\n+```yaml\nMemory: )2Gi", r"\g<1>4Gi"),
      (r"(### 1\. Memory(?:.*\n)*?- \*\*Development\*\*: )2Gi", r"\g<1>4Gi")],
     "service-dev.yaml: limits.memory '2Gi', want 4Gi"),
    ([(r"`MAX_CONNECTIONS`: 20 \(dev\)", "`MAX_CONNECTIONS`: 25 (dev)")], "MAX_CONNECTIONS=20, seed says 25"),
    ([(r"`SESSION_STORAGE_TYPE`: cloud", "`SESSION_STORAGE_TYPE`: s3")], "SESSION_STORAGE_TYPE=cloud, seed says s3"),
    ([(r"(`WS_KEEPALIVE_INTERVAL`: 20000ms \(dev\) / )15000ms", r"\g<1>10000ms")],
     "WS_KEEPALIVE_INTERVAL=15000, seed says 10000"),
)


def expect_caught(errs, what, errors, expected):
    if not any(expected in e for e in errors):
        errs.append("self-check: %s was not caught as expected (want an error with '%s', got %r)"
                    % (what, expected, errors))


def self_check(deploy_dir, seed_path):
    errs = []
    with tempfile.TemporaryDirectory(prefix="check_seed.") as tmp:
        for i, (fname, old, new, expected) in enumerate(MUTATIONS):
            d = os.path.join(tmp, "m%d" % i)
            shutil.copytree(deploy_dir, d)
            p = os.path.join(d, fname)
            with open(p, encoding="utf-8") as f:
                text = f.read()
            mutated, n = re.subn(old, new, text, count=1)
            if n != 1:
                errs.append("self-check: mutation %d (%s: %s) matched nothing: update MUTATIONS" % (i, fname, old))
                continue
            with open(p, "w", encoding="utf-8") as f:
                f.write(mutated)
            expect_caught(errs, "%s: %s -> %s" % (fname, old, new), check_all(d, seed_path), expected)
        with open(seed_path, encoding="utf-8") as f:
            seed_text = f.read()
        for i, (edits, expected) in enumerate(SEED_MUTATIONS):
            mutated = seed_text
            for old, new in edits:
                mutated, n = re.subn(old, new, mutated, count=1)
                if n != 1:
                    errs.append("self-check: seed mutation %d (%s) matched nothing: update SEED_MUTATIONS" % (i, old))
            s = os.path.join(tmp, "seed%d.md" % i)
            with open(s, "w", encoding="utf-8") as f:
                f.write(mutated)
            expect_caught(errs, "seed edit %d" % i, check_all(deploy_dir, s), expected)
        expect_caught(errs, "a missing seed", check_all(deploy_dir, os.path.join(tmp, "none.md")), "is missing")
    return errs, len(MUTATIONS) + len(SEED_MUTATIONS) + 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--seed")
    ap.add_argument("--no-self-check", action="store_true")
    a = ap.parse_args()
    deploy_dir = os.path.join(a.repo, "deploy")
    seed = find_seed(a.repo, a.seed)
    errs = check_all(deploy_dir, seed)
    for e in errs:
        print("FAIL " + e)
    if errs:
        print("check_seed: %d problem(s) in %s against %s" % (len(errs), deploy_dir, seed))
        return 1
    print("check_seed: deploy/ matches %s (dev and prod: cloudbuild, service, Dockerfile)" % seed)
    if a.no_self_check:
        return 0
    serrs, n = self_check(deploy_dir, seed)
    for e in serrs:
        print("FAIL " + e)
    if serrs:
        return 1
    print("check_seed: self-check: all %d deliberate edits were caught" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
