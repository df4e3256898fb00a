"""Which JSON parser ``check`` reads a Kimi Code ``wire.jsonl`` with.

Run from the repository root (needs ``msgspec``, which ``check`` uses, and
``orjson``, only to compare: ``pip install orjson``)::

    PYTHONPATH=spec:reference python benchmarks/bench_json.py            # 0.1 GB
    PYTHONPATH=spec:reference python benchmarks/bench_json.py --gb 0.02  # quick

It writes the file ``bench_formats.py`` checks (same generator, same seed),
reads its lines into memory once, and times, per line, best of 3:

* ``json.loads`` of the line's text (what ``check`` did: decode, then parse);
* ``orjson.loads`` of the line's bytes, to a dict;
* ``msgspec.json.decode`` of the bytes, to a dict;
* ``msgspec`` typed: a ``msgspec.json.Decoder`` of a tagged union of
  ``msgspec.Struct`` records (tag ``type``) holding only the fields the Kimi
  importer reads; unknown fields (``time``, ``uuid``, ``turnId``, a think
  part's text, ``usage``...) are skipped without being built.

What was measured (0.1 GB, 136,571 lines, 0.73 KB each on average;
python 3.11, x86_64, 2 cpus; best of 3, in one run):

=================================  =========  =======  ==========
parser                             µs / line  MB/s     vs ``json``
=================================  =========  =======  ==========
``json.loads`` (text)              5.13       143      1.00 ×
``orjson.loads``                   1.75       419      0.34 ×
``msgspec.json.decode`` (dict)     1.44       508      0.28 ×
``msgspec`` typed (needed fields)  1.13       651      0.22 ×
=================================  =========  =======  ==========

``check`` uses ``msgspec.json.decode`` to a dict:

* it is the fastest parser that gives the very ``dict`` ``json.loads`` gives,
  so every importer keeps its one reading of its records and its messages;
  orjson turns an integer past 64 bits into a float, silently, msgspec keeps
  it exact, as ``json`` does;
* a line msgspec refuses (malformed, or ``NaN``, ``1e400``, a lone surrogate
  escape, which ``json`` accepts) is read again by ``json``, so the verdict
  and the message on every line are the standard library's
  (``tests/test_fast_parse.py`` checks it over generated logs in every
  format);
* the typed decoder saves 0.3 µs a line more (about 0.04 s of the 0.1 GB
  file), little beside the importers' own work, at the price of a second,
  typed copy of each importer's reading of its records and a fallback for
  every record type its union does not list.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_formats import generate  # noqa: E402


def typed_decoder() -> Callable[[bytes], object]:
    import msgspec

    class Part(msgspec.Struct):
        type: str
        text: str | None = None

    class Result(msgspec.Struct):
        output: str | list[Part] = ""
        isError: bool = False
        note: str | None = None

    class Loop(msgspec.Struct):
        type: str
        toolCallId: str | None = None
        name: str | None = None
        args: object = None
        part: Part | None = None
        result: Result | None = None
        finishReason: str | None = None

    class Origin(msgspec.Struct):
        kind: str = "user"

    class Message(msgspec.Struct):
        role: str
        content: str | list[Part] = ""
        origin: Origin | None = None
        toolCallId: str | None = None
        isError: bool = False

    class LoopEvent(msgspec.Struct, tag="context.append_loop_event", tag_field="type"):
        event: Loop

    class AppendMessage(msgspec.Struct, tag="context.append_message", tag_field="type"):
        message: Message

    class Prompt(msgspec.Struct, tag="turn.prompt", tag_field="type"):
        input: str | list[Part] = ""

    class Steer(msgspec.Struct, tag="turn.steer", tag_field="type"):
        input: str | list[Part] = ""

    class Cancel(msgspec.Struct, tag="turn.cancel", tag_field="type"):
        pass

    class Usage(msgspec.Struct, tag="usage.record", tag_field="type"):
        pass

    class Compaction(msgspec.Struct, tag="context.apply_compaction", tag_field="type"):
        summary: str = ""
        compactedCount: int = 0

    class Begin(msgspec.Struct, tag="full_compaction.begin", tag_field="type"):
        pass

    class Complete(msgspec.Struct, tag="full_compaction.complete", tag_field="type"):
        pass

    class Meta(msgspec.Struct, tag="metadata", tag_field="type"):
        protocol_version: str = ""

    class Config(msgspec.Struct, tag="config.update", tag_field="type"):
        systemPrompt: str | None = None

    union = LoopEvent | AppendMessage | Prompt | Steer | Cancel | Usage | Compaction | Begin | Complete | Meta | Config
    return msgspec.json.Decoder(union).decode


def best(fn: Callable[[bytes], object], lines: list[bytes], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for raw in lines:
            fn(raw)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=0.1, help="file size in GB (default 0.1)")
    args = parser.parse_args()
    import msgspec
    import orjson

    fd, path = tempfile.mkstemp(suffix=".wire.jsonl")
    os.close(fd)
    try:
        generate(path, int(args.gb * 1e9))
        with open(path, "rb") as f:
            lines = f.readlines()
    finally:
        os.unlink(path)
    size = sum(map(len, lines))
    parsers: dict[str, Callable[[bytes], object]] = {
        "json.loads (text)": lambda raw: json.loads(raw.decode("utf-8")),
        "orjson.loads": orjson.loads,
        "msgspec.json.decode (dict)": msgspec.json.decode,
        "msgspec typed (needed fields)": typed_decoder(),
    }
    print(f"{size / 1e9:.2f} GB, {len(lines):,} lines\n")
    print("| parser | µs / line | MB/s | vs json |")
    print("| --- | --- | --- | --- |")
    base = 0.0
    for name, fn in parsers.items():
        s = best(fn, lines)
        base = base or s
        print(f"| {name} | {s / len(lines) * 1e6:.2f} | {size / 1e6 / s:.0f} | {s / base:.2f} × |", flush=True)


if __name__ == "__main__":
    main()
