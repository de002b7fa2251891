"""Run generated dialplan contexts the way Asterisk would, for tests.

Asterisk is not installable here, so this walks the generated
``extensions.conf`` text priority by priority: it substitutes ``${VAR}``,
evaluates the ``$[...]`` expressions the templates use (``=``, ``!=``,
``&``, ``|``, parentheses, quoted strings) and ``${CUT(...)}``, follows ``Goto``/``GotoIf``
and labels, and runs ``AGI(agi://...)`` through the fake Asterisk client
against the real server, setting ``AGISTATUS`` like Asterisk does (and
ending there when it is ``HANGUP``, as Asterisk does). It stops at the first jump out of the generated contexts (the PBX's own), at
``Dial``/``Queue``/``ChanSpy`` (recorded as where the call rang), or at
``Hangup``. Only what the generated dialplan uses is supported; anything
else raises, so a template change cannot silently slip past the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .agi_client import CallScript, place_call

_EXTEN = re.compile(r"exten\s*=>\s*([^,]+),(\d+)(?:\(([\w-]+)\))?,(.*)")
_SAME = re.compile(r"same\s*=>\s*n(?:\(([\w-]+)\))?,(.*)")
_APP = re.compile(r"(\w+)\((.*)\)$")


@dataclass
class Step:
    context: str
    exten: str
    priority: int
    app: str
    data: str  # after variable substitution


@dataclass
class RunResult:
    steps: list[Step]
    ended: str  # "goto", "hangup", "dial", "queue", "end"
    target: str  # "ctx,exten,prio" for goto; the dial string for dial/queue
    variables: dict[str, str]
    rang: list[tuple[str, str]] = field(default_factory=list)  # (app, data) before the end

    def apps(self) -> list[str]:
        return [s.app for s in self.steps]


@dataclass
class _Priority:
    number: int
    label: str | None
    app: str
    data: str


def parse_dialplan(text: str) -> dict[str, dict[str, list[_Priority]]]:
    contexts: dict[str, dict[str, list[_Priority]]] = {}
    ctx = None
    last_exten = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0] if not re.search(r"\\;", raw) else raw
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            ctx = line[1:-1]
            contexts.setdefault(ctx, {})
            continue
        if ctx is None:
            continue
        m = _EXTEN.match(line)
        if m:
            exten, number, label, body = m[1].strip(), int(m[2]), m[3], m[4]
            app_m = _APP.match(body)
            if app_m is None:
                raise ValueError(f"cannot parse {line!r}")
            contexts[ctx].setdefault(exten, []).append(_Priority(number, label, app_m[1], app_m[2]))
            last_exten = exten
            continue
        m = _SAME.match(line)
        if m:
            assert last_exten is not None
            prios = contexts[ctx][last_exten]
            app_m = _APP.match(m[2])
            if app_m is None:
                raise ValueError(f"cannot parse {line!r}")
            prios.append(_Priority(prios[-1].number + 1, m[1], app_m[1], app_m[2]))
            continue
        if line.startswith("include") or "=" in line:
            continue
        raise ValueError(f"cannot parse {line!r}")
    return contexts


_CUT = re.compile(r"\$\{CUT\(([A-Za-z0-9_]+),(.),([0-9]+)(-?)\)\}")


def cut(value: str, delimiter: str, field: int, to_end: bool) -> str:
    """Asterisk's ``CUT(var,delim,N)`` / ``CUT(var,delim,N-)``."""
    parts = value.split(delimiter)
    if to_end:
        return delimiter.join(parts[field - 1 :])
    return parts[field - 1] if field <= len(parts) else ""


def _substitute(text: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        return variables.get(m[1], "")

    def repl_cut(m: re.Match[str]) -> str:
        return cut(variables.get(m[1], ""), m[2], int(m[3]), m[4] == "-")

    prev = None
    while prev != text:
        prev = text
        text = _CUT.sub(repl_cut, text)
        text = re.sub(r"\$\{([A-Za-z0-9_()]+)\}", repl, text)
    return text


def _split_args(data: str) -> list[str]:
    """Split application data at unescaped commas; unescape ``\\x``."""
    out, cur, i = [], [], 0
    depth = 0
    while i < len(data):
        ch = data[i]
        if ch == "\\" and i + 1 < len(data):
            cur.append(data[i + 1])
            i += 2
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(!=|=|\||&|\(|\))|([^\s"()|&!=]+))')


def evaluate(expr: str) -> str:
    """Asterisk ``$[...]`` for the operators the templates use."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot evaluate {expr!r} at {pos}")
        if m[1] is not None:
            tokens.append(("str", m[1]))
        elif m[2] is not None:
            tokens.append(("op", m[2]))
        else:
            tokens.append(("str", m[3]))
        pos = m.end()
        while pos < len(expr) and expr[pos] == " ":
            pos += 1

    def parse_or(i: int) -> tuple[str, int]:
        left, i = parse_and(i)
        while i < len(tokens) and tokens[i] == ("op", "|"):
            right, i = parse_and(i + 1)
            left = left if left not in ("", "0") else right
        return left, i

    def parse_and(i: int) -> tuple[str, int]:
        left, i = parse_cmp(i)
        while i < len(tokens) and tokens[i] == ("op", "&"):
            right, i = parse_cmp(i + 1)
            left = right if left not in ("", "0") and right not in ("", "0") else "0"
        return left, i

    def parse_cmp(i: int) -> tuple[str, int]:
        left, i = parse_atom(i)
        while i < len(tokens) and tokens[i] in (("op", "="), ("op", "!=")):
            op = tokens[i][1]
            right, i = parse_atom(i + 1)
            left = "1" if (left == right) == (op == "=") else "0"
        return left, i

    def parse_atom(i: int) -> tuple[str, int]:
        kind, value = tokens[i]
        if (kind, value) == ("op", "("):
            inner, i = parse_or(i + 1)
            assert tokens[i] == ("op", ")")
            return inner, i + 1
        if kind != "str":
            raise ValueError(f"unexpected {value!r} in {expr!r}")
        return value, i + 1

    value, end = parse_or(0)
    if end != len(tokens):
        raise ValueError(f"trailing tokens in {expr!r}")
    return value


async def run_context(
    dialplan: str,
    context: str,
    *,
    call: CallScript | None = None,
    exten: str = "s",
    variables: dict[str, str] | None = None,
    max_steps: int = 200,
) -> RunResult:
    contexts = parse_dialplan(dialplan)
    variables = dict(variables or {})
    call = call or CallScript()
    variables.setdefault("CALLERID(num)", "" if call.callerid in ("", "unknown") else call.callerid)
    steps: list[Step] = []
    rang: list[tuple[str, str]] = []
    ctx, ext, index = context, exten, 0
    for _ in range(max_steps):
        prios = contexts.get(ctx, {}).get(ext)
        if prios is None:
            return RunResult(steps, "goto", f"{ctx},{ext},{index + 1}", variables, rang)
        if index >= len(prios):
            return RunResult(steps, "end", f"{ctx},{ext},{index + 1}", variables, rang)
        prio = prios[index]
        app = prio.app
        raw_data = prio.data
        if app == "GotoIf":
            m = re.fullmatch(r"\$\[(.*)\]\?(.*)", raw_data)
            if m is None:
                raise ValueError(f"unsupported GotoIf {raw_data!r}")
            cond = evaluate(_substitute(m[1], variables))
            then, _, otherwise = m[2].partition(":")
            steps.append(Step(ctx, ext, prio.number, app, f"{cond}?{m[2]}"))
            target = then if cond not in ("", "0") else otherwise
            if target:
                ctx, ext, index = _jump(contexts, ctx, ext, _substitute(target, variables))
                continue
            index += 1
            continue
        data = _substitute(raw_data, variables)
        steps.append(Step(ctx, ext, prio.number, app, data))
        if app in ("NoOp", "Verbose", "Answer", "Wait", "Playback", "UserEvent"):
            if app == "Playback":
                rang.append((app, data))
            index += 1
        elif app == "Set":
            name, _, value = data.partition("=")
            variables[name] = value.replace("\\", "")
            index += 1
        elif app == "AGI":
            await _agi(data, call, variables)
            if variables["AGISTATUS"] == "HANGUP":
                # AGI() returns -1 for a caller who hung up: Asterisk runs
                # nothing after it but the h extension (seen on Asterisk 22).
                return RunResult(steps, "hangup", f"{ctx},{ext},{prio.number}", variables, rang)
            index += 1
        elif app == "Goto":
            ctx2, ext2, index2 = _jump(contexts, ctx, ext, data)
            if ctx2 not in contexts:
                args = _split_args(data)
                return RunResult(steps, "goto", ",".join(args), variables, rang)
            ctx, ext, index = ctx2, ext2, index2
        elif app in ("Dial", "Queue", "ChanSpy"):
            rang.append((app, data))
            # the far end does not answer; the dialplan goes on (next/failure)
            variables["DIALSTATUS" if app == "Dial" else "QUEUESTATUS"] = (
                "NOANSWER" if app == "Dial" else "TIMEOUT"
            )
            index += 1
        elif app == "Hangup":
            return RunResult(steps, "hangup", "", variables, rang)
        elif app == "Return":
            return RunResult(steps, "end", "return", variables, rang)
        else:
            raise ValueError(f"the dialplan runner does not know {app}()")
    raise RuntimeError("dialplan loop: too many steps")


def _jump(contexts, ctx: str, ext: str, target: str) -> tuple[str, str, int]:
    args = _split_args(target)
    if len(args) == 1:
        ctx2, ext2, prio = ctx, ext, args[0]
    elif len(args) == 2:
        ctx2, ext2, prio = ctx, args[0], args[1]
    else:
        ctx2, ext2, prio = args[0], args[1], args[2]
    prios = contexts.get(ctx2, {}).get(ext2)
    if prios is None:
        return ctx2, ext2, 0
    if prio.isdigit():
        for i, p in enumerate(prios):
            if p.number == int(prio):
                return ctx2, ext2, i
        raise ValueError(f"no priority {prio} in {ctx2},{ext2}")
    for i, p in enumerate(prios):
        if p.label == prio:
            return ctx2, ext2, i
    raise ValueError(f"no label {prio!r} in {ctx2},{ext2}")


async def _agi(url: str, call: CallScript, variables: dict[str, str]) -> None:
    parts = urlsplit(url.split(",", 1)[0])
    script = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    call.script = script
    call.variables = {**call.variables, **variables}
    result = await place_call(parts.hostname or "127.0.0.1", parts.port or 4573, call, timeout=5.0)
    variables.update(result.variables)
    variables["AGISTATUS"] = result.agistatus
