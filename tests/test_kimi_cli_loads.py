"""Will Kimi CLI itself load it?  Our files, restored by Kimi CLI's own loader.

Kimi CLI (the pinned ``kimi-cli`` from the package registry) runs in a venv of
its own, made here on first use under ``tests/kimi_cli/.venv`` (ignored by git)
with a Python >= 3.12 found on PATH or under pyenv; the test is skipped, with
the reason, where there is none or the registry cannot be reached.  One child
process (``tests/kimi_cli/restore.py``) restores every file through
``kimi_cli.soul.context.Context.restore`` and reports what it raised or the
history it restored.  The files are built here or bundled in
``examples/kimi-context/``; each is checked twice: as it is (the refusals of
``ctxref.formats.loadable`` must be exactly the files the loader fails on) and
repaired (the loader must get through it, and the restored history must pair
every call with one result).
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import random
import shutil
import subprocess
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctxref.formats.loadable import KIMI_CLI_VERSION, refusals
from ctxref.formats.messages import SYNTHETIC_TEXT, KimiSource, load_messages, repair_messages_file

ROOT = Path(__file__).parent.parent
HERE = ROOT / "tests" / "kimi_cli"
VENV = HERE / ".venv"
EXAMPLES = ROOT / "examples" / "kimi-context"
HEAD = '{"role": "_system_prompt", "content": "You are Kimi CLI."}\n{"role": "_checkpoint", "id": 0}\n'
#: The bundled examples Kimi CLI cannot restore as they are, and what it raises.
UNLOADABLE = {"image-part.jsonl": "KeyError", "audio-part.jsonl": "KeyError", "no-content.jsonl": "TypeError"}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def _python312() -> str | None:
    """The newest Python >= 3.12 on PATH or under pyenv, or None."""
    found: list[str] = [p for name in ("python3.14", "python3.13", "python3.12") if (p := shutil.which(name))]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found += sorted(glob.glob(os.path.join(root, "versions", "3.1[2-9]*", "bin", "python")), reverse=True)
    for candidate in found:
        probe = subprocess.run([candidate, "-c", "import sys; assert sys.version_info >= (3, 12)"], capture_output=True, env=_env())
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def kimi_python() -> Iterator[Path]:
    """The venv's python, with the pinned kimi-cli (the venv is made or updated first)."""
    python = VENV / "bin" / "python"
    with open(HERE / ".venv.lock", "w") as lock:  # pytest-xdist workers share the venv
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        probe = "import importlib.metadata as m; print(m.version('kimi-cli'))"
        if not python.exists() or subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=_env()).stdout.strip() != KIMI_CLI_VERSION:
            base = _python312()
            if base is None:
                pytest.skip("kimi-cli needs Python >= 3.12: none on PATH or under pyenv")
            if not python.exists():
                made = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True, env=_env())
                assert made.returncode == 0, made.stderr
            pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"kimi-cli=={KIMI_CLI_VERSION}"], capture_output=True, text=True, env=_env(), timeout=900)
            if pip.returncode != 0:
                pytest.skip(f"cannot install kimi-cli=={KIMI_CLI_VERSION}: {pip.stderr.strip().splitlines()[-1:]}")
        print(f"kimi-cli venv ready in {time.monotonic() - started:.1f} s")
    yield python


def _restore(python: Path, files: list[Path], error: dict[str, str] | None = None) -> dict[str, object]:
    job = json.dumps({"files": [str(f) for f in files], "error": error})
    proc = subprocess.run([str(python), str(HERE / "restore.py")], input=job, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _line(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def _call(cid: str, name: str = "Shell") -> dict[str, object]:
    return {"type": "function", "id": cid, "function": {"name": name, "arguments": "{}"}}


def _built(tmp: Path) -> dict[str, str]:
    """Our own files: ``name -> the exception Kimi CLI raises restoring it`` ("" when it loads)."""
    user = _line({"role": "user", "content": "go"})
    ask = _line({"role": "assistant", "content": "", "tool_calls": [_call("Shell:0"), _call("ReadFile:1", "ReadFile")]})
    files: dict[str, tuple[str, str]] = {
        # parts of another provider's shape, or of a kosong newer than 1.52's
        "image-anthropic": ("KeyError", _line({"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}) + ask),
        "audio-openai": ("KeyError", user + ask + _line({"role": "tool", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}], "tool_call_id": "Shell:0"})),
        "file-part": ("KeyError", user + _line({"role": "assistant", "content": [{"type": "file", "file": {"url": "x"}}]})),
        "no-content": ("TypeError", user + _line({"role": "assistant", "tool_calls": [_call("Shell:0")]})),
        "unknown-meta-no-content": ("TypeError", user + _line({"role": "_title", "title": "x"})),
        "self-key": ("TypeError", _line({"role": "user", "content": "go", "self": 1})),
        "too-deep": ("RecursionError", user + '{"role":"user","content":' + "[" * 100_000 + "]" * 100_000 + "}\n"),
        # what it loads: kosong's own media parts; lines it skips; both error forms; unpaired calls
        "media-kosong": ("", _line({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}, {"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,AA==", "id": None}}, {"type": "video_url", "video_url": {"url": "https://example.org/v.mp4"}}]})),
        "skipped-lines": ("", user + "not json\n[1]\n" + _line({"role": "developer", "content": "x"}) + _line({"role": "user", "content": [{"type": 3}]}) + _line({"role": "_usage", "token_count": "many"}) + '{"role":"user","content":"cut'),
        "error-forms": ("", user + ask + _line({"role": "tool", "content": "<system>ERROR: exit 1</system>", "tool_call_id": "Shell:0"}) + _line({"role": "tool", "content": [{"type": "text", "text": "<system>ERROR</system>"}, {"type": "text", "text": "<system>no such file</system>"}], "tool_call_id": "ReadFile:1"})),
        "unpaired": ("", user + ask + _line({"role": "tool", "content": "ok", "tool_call_id": "ReadFile:1"}) + _line({"role": "tool", "content": "late", "tool_call_id": "Gone:9"}) + user + ask),
    }
    for name, (_, text) in files.items():
        (tmp / f"{name}.jsonl").write_text(HEAD + text, encoding="utf-8")
    return {name: raised for name, (raised, _) in files.items()}


def _unpaired(history: list[dict[str, object]]) -> list[str]:
    """Calls without exactly one result right after their message, and results without their call there."""
    problems: list[str] = []
    open_ids: list[str] = []
    for m in history + [{"role": "user"}]:
        if m["role"] == "tool":
            cid = str(m.get("tool_call_id"))
            if cid in open_ids:
                open_ids.remove(cid)
            else:
                problems.append(f"orphan result {cid}")
            continue
        problems += [f"unanswered call {c}" for c in open_ids]
        calls = m.get("tool_calls") or []
        assert isinstance(calls, list)
        open_ids = [str(c["id"]) for c in calls]
    return problems


def test_kimi_cli_restores_what_we_say_and_every_repair(kimi_python: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    built = _built(tmp_path)
    originals = {tmp_path / f"{n}.jsonl": raised for n, raised in built.items()}
    for path in sorted(EXAMPLES.rglob("*.jsonl")):
        originals[path] = UNLOADABLE[path.name] if path.parent.name == "unloadable" else ""
    repaired: dict[Path, Path] = {}
    for k, path in enumerate(originals):
        text, changes, _ = repair_messages_file(str(path), "kimi-context", lenient=True)  # as `ctxcontract repair` does
        target = tmp_path / f"repaired-{k}-{path.name}"
        target.write_text(text, encoding="utf-8")
        repaired[path] = target
    result = _restore(kimi_python, [*originals, *repaired.values()], {"call_id": "Shell:0", "message": SYNTHETIC_TEXT})
    restored = result["files"]
    assert isinstance(restored, dict)

    for path, raised in originals.items():
        got = restored[str(path)]
        # the loader fails on exactly the files we say it refuses, with the error we name
        assert got["error"] == (raised or None), (path.name, got["error"])
        refused = refusals(str(path), "kimi-context")
        assert bool(refused) == bool(raised), (path.name, refused)
        assert all(raised in r.why for r in refused), refused
        # repaired: loaded, every call paired, nothing left for us to refuse
        fixed = restored[str(repaired[path])]
        assert fixed["ok"], (path.name, fixed["error"])
        assert refusals(str(repaired[path]), "kimi-context") == []
        assert _unpaired(fixed["history"]) == [], path.name
        # and what it restores is what we read: the same calls and results, in the same order
        ours = load_messages(str(repaired[path]), "kimi-context", lenient=True).messages if fixed["history"] else ()
        theirs = [(m["role"], m.get("tool_call_id"), [c["id"] for c in m.get("tool_calls") or []]) for m in fixed["history"] if m["role"] in ("assistant", "tool")]
        assert theirs == [(m.role, getattr(m, "call_id", None), [c.id for c in getattr(m, "calls", ())]) for m in ours if m.role in ("assistant", "tool")], path.name

    # the closing result we write is the line Kimi CLI writes for a tool error with no output
    ours_line = next(line for line in repaired[tmp_path / "unpaired.jsonl"].read_text(encoding="utf-8").splitlines() if SYNTHETIC_TEXT in line)
    assert ours_line == result["error"]
    # and we read Kimi CLI's error forms as errors
    errors = load_messages(str(tmp_path / "error-forms.jsonl"), "kimi-context").messages
    assert [m.is_error for m in errors if m.role == "tool"] == [True, True]  # type: ignore[union-attr]
    print(f"{len(originals) * 2} files restored by Kimi CLI {KIMI_CLI_VERSION} in {time.monotonic() - started:.1f} s")


def _mutants(seed: int, count: int) -> list[dict[str, object]]:
    """Lines of Kimi CLI's shape, each with one field changed: the model must tell which ones stop the restore."""
    rng = random.Random(seed)
    call = _call("Shell:0")
    bases: list[dict[str, object]] = [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
        {"role": "assistant", "content": [{"type": "think", "think": "t"}, {"type": "text", "text": "b"}], "tool_calls": [call]},
        {"role": "tool", "content": "<system>ERROR: x</system>", "tool_call_id": "Shell:0"},
        {"role": "_checkpoint", "id": 1},
        {"role": "_usage", "token_count": 5},
        {"role": "_system_prompt", "content": "s"},
    ]
    values: list[object] = [None, 3, True, "x", [], {}, [{"type": "file"}], [{"type": "text", "text": "a"}], [{"type": 3}], [{"type": "image"}], [{}], ["s"], {"type": "text"}, [call], [{"id": 1}]]
    roles: list[object] = ["user", "assistant", "tool", "system", "developer", "_checkpoint", "_usage", "_system_prompt", "_title", 3, None]
    parts: list[object] = ["text", "think", "image_url", "audio_url", "video_url", "image", "input_audio", "file", 3, None]
    out: list[dict[str, object]] = []
    for _ in range(count):
        line = json.loads(json.dumps(rng.choice(bases)))
        how = rng.randrange(5)
        key = rng.choice(sorted(line))
        if how == 0:
            del line[key]
        elif how == 1:
            line[rng.choice([key, "content", "tool_calls", "id", "token_count"])] = rng.choice(values)
        elif how == 2:
            line[rng.choice(["self", "name", "partial", "extra"])] = rng.choice(values)
        elif how == 3:
            line["role"] = rng.choice(roles)
        elif isinstance(line.get("content"), list) and line["content"]:
            line["content"][rng.randrange(len(line["content"]))]["type"] = rng.choice(parts)
        out.append(line)
    return out


def test_the_model_agrees_with_kimi_cli_on_changed_lines(kimi_python: Path, tmp_path: Path) -> None:
    """Each file: a prompt, then one changed line.  The restore fails exactly when refusals says so,
    and when it loads, it restores the messages our reader reads (lines it skips, we skip)."""
    files: list[Path] = []
    for k, line in enumerate(_mutants(seed=11, count=300)):
        path = tmp_path / f"m{k}.jsonl"
        path.write_text(_line({"role": "user", "content": "go"}) + _line(line), encoding="utf-8")
        files.append(path)
    restored = _restore(kimi_python, files)["files"]
    assert isinstance(restored, dict)
    disagree = []
    for path in files:
        got, refused = restored[str(path)], refusals(str(path), "kimi-context")
        if bool(refused) != (not got["ok"]) or (refused and refused[0].why.split(" raises ")[1].split()[0] != got["error"]):
            disagree.append((path.read_text().splitlines()[1], got["error"], refused))
        elif got["ok"]:
            ours = load_messages(str(path), "kimi-context", lenient=True)
            assert isinstance(ours.source, KimiSource)
            read = sum(1 for r in ours.source.records if r.message is not None)
            if len(got["history"]) != read:
                disagree.append((path.read_text().splitlines()[1], f"Kimi CLI restored {len(got['history'])} messages, we read {read}", [u.why for u in ours.report.unreadable]))
    assert disagree == [], "\n".join(map(str, disagree))
