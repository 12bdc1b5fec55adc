"""Dashboard layer: ROOT TLatex titles ("#eta vs #phi", "p_{T} [GeV]") as unicode text.

A small table-driven, single-pass parser (linear time, no regular expressions).
"""

# ruff: noqa: RUF001 - the symbol tables are unicode by design
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

_GREEK = (
    "alpha α beta β gamma γ delta δ epsilon ε varepsilon ε zeta ζ eta η theta θ "
    "vartheta ϑ iota ι kappa κ lambda λ mu μ nu ν xi ξ omicron ο pi π varpi ϖ rho ρ "
    "sigma σ varsigma ς tau τ upsilon υ phi φ varphi ϕ chi χ psi ψ omega ω "
    "Alpha Α Beta Β Gamma Γ Delta Δ Epsilon Ε Zeta Ζ Eta Η Theta Θ Iota Ι Kappa Κ "
    "Lambda Λ Mu Μ Nu Ν Xi Ξ Omicron Ο Pi Π Rho Ρ Sigma Σ Tau Τ Upsilon Υ Phi Φ "
    "Chi Χ Psi Ψ Omega Ω"
)
_MATHS = (
    "circ ° pm ± mp ∓ times × cdot · upoint · divide ÷ leq ≤ geq ≥ neq ≠ approx ≈ "
    "sim ∼ equiv ≡ propto ∝ infty ∞ partial ∂ nabla ∇ ell ℓ hbar ħ prime ′ "
    "rightarrow → leftarrow ← leftrightarrow ↔ Rightarrow ⇒ Leftarrow ⇐ uparrow ↑ "
    "downarrow ↓ sum ∑ prod ∏ int ∫ oint ∮ in ∈ notin ∉ subset ⊂ cup ∪ cap ∩ "
    "wedge ∧ vee ∨ forall ∀ exists ∃ perp ⊥ odot ⊙ oplus ⊕ otimes ⊗ AA Å aa å "
    "dagger † bullet • dots … ldots … cbar ¢ angle ∠ backslash \\ "
    "LT < GT > Box □ diamond ◇ lbar | parallel ∥ Jgothic ℑ Rgothic ℜ aleph ℵ wp ℘"
)
#: ``#name`` -> replacement for argument-free commands.
SYMBOLS: dict[str, str] = {
    **dict(zip(_GREEK.split()[::2], _GREEK.split()[1::2], strict=True)),
    **dict(zip(_MATHS.split()[::2], _MATHS.split()[1::2], strict=True)),
    "void0": "",
    "void1": "",
    "void2": "",
    "void3": "",
    "cdots": "⋯",
}
#: Commands with one ``{text}`` argument that is kept as is (after an optional ``[...]``).
PASS_THROUGH = frozenset(
    {"font", "color", "it", "bf", "scale", "lower", "mbox", "hbox", "mathrm", "bold", "kern"}
)
#: Accents: a combining character put after each visible character of the argument.
ACCENTS: dict[str, str] = {
    "bar": "\u0304",
    "hat": "\u0302",
    "tilde": "\u0303",
    "vec": "\u20d7",
    "dot": "\u0307",
    "ddot": "\u0308",
    "check": "\u030c",
    "acute": "\u0301",
    "grave": "\u0300",
    "underline": "\u0332",
}
_TWO_ARGS = frozenset({"splitline", "frac"})
_SUP = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyz",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ",
        strict=True,
    )
)
_SUB = dict(
    zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True)
)
_SUP |= {"−": "⁻", " ": " "}
_SUB |= {"−": "₋", " ": " "}
_ESCAPABLE = frozenset("{}#^_[]")
_MAX_DEPTH = 40
_NAMES_BY_LENGTH = sorted(
    {*SYMBOLS, *PASS_THROUGH, *ACCENTS, *_TWO_ARGS, "sqrt", "left", "right"},
    key=len,
    reverse=True,
)


def clean_root_latex(text: str) -> str:
    """ROOT TLatex as plain unicode: ``"#chi^{2}/ndf"`` -> ``"χ²/ndf"``.

    Greek letters and common symbols become their characters, ``^{..}``/``_{..}``
    unicode super/subscripts where every character has one (else ``^(..)``, or
    ``_T`` for one character), ``#sqrt{x}`` ``√x``, ``#bar{x}`` ``x̄``,
    ``#splitline{a}{b}`` ``"a / b"``; font, colour, italic and bold commands keep their
    text. A ``#`` before a character ROOT escapes is dropped. Text without ``#``, ``^``,
    ``_{`` or braces is returned unchanged; an underscore not followed by a brace is
    text (DQM names like ``ME_1_1``), as is ``#`` before a digit or space (``"#1"``).

    Args:
        text: A ROOT title or axis title (``None`` gives ``""``).

    Returns:
        The cleaned text, stripped of surrounding white space. Never raises.
    """
    if not text:
        return ""
    if not any(c in text for c in "#^{}"):
        return text
    try:
        return _Parser(text).run().strip()
    except Exception:  # a title must never break a page: show it raw
        logger.debug("could not clean title %r", text, exc_info=True)
        return text


class _Parser:
    """Single left-to-right pass; each character is looked at a bounded number of times."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def run(self) -> str:
        return self._seq(0, in_group=False)

    def _seq(self, depth: int, *, in_group: bool) -> str:
        s, out = self.s, list[str]()
        while self.i < len(s):
            c = s[self.i]
            if c == "}":
                self.i += 1
                if in_group:
                    return "".join(out)
                continue  # a stray closing brace
            if c == "{":
                self.i += 1
                out.append(self._group(depth))
            elif c == "#":
                out.append(self._command(depth))
            elif c in "^_" and self._is_script(c):
                self.i += 1
                out.append(_script(self._arg(depth), sup=c == "^"))
            else:
                out.append(c)
                self.i += 1
        return "".join(out)

    def _group(self, depth: int) -> str:
        """The text up to the matching ``}`` (the ``{`` is consumed already)."""
        if depth >= _MAX_DEPTH:  # pathological nesting: the rest is literal text
            rest, self.i = self.s[self.i :], len(self.s)
            return rest
        return self._seq(depth + 1, in_group=True)

    def _is_script(self, c: str) -> bool:
        nxt = self.s[self.i + 1 : self.i + 2]
        return nxt == "{" or (c == "^" and nxt != "" and (nxt.isalnum() or nxt in "+-"))

    def _arg(self, depth: int) -> str:
        """One argument: a ``{group}``, else a single character (``x^2``)."""
        s = self.s
        while self.i < len(s) and s[self.i] == " ":
            self.i += 1
        if self.i >= len(s):
            return ""
        if s[self.i] == "{":
            self.i += 1
            return self._group(depth)
        if s[self.i] == "#":
            return self._command(depth)
        self.i += 1
        return s[self.i - 1]

    def _option(self) -> str:
        """An optional ``[...]`` right after a command (font number, colour, root order)."""
        s = self.s
        if self.i < len(s) and s[self.i] == "[":
            end = s.find("]", self.i)
            if end >= 0:
                opt, self.i = s[self.i + 1 : end], end + 1
                return opt
        return ""

    def _command(self, depth: int) -> str:
        s = self.s
        start = self.i + 1  # after "#"
        end = start
        while end < len(s) and s[end].isalpha():
            end += 1
        letters = s[start:end]
        if not letters:
            nxt = s[start : start + 1]
            if nxt in _ESCAPABLE and nxt:
                self.i = start + 1
                return nxt
            self.i = start
            return "#"  # "#1", "# of hits": ordinary text
        # TLatex matches command names by prefix: "#mus" is μ followed by "s"
        name = next((n for n in _NAMES_BY_LENGTH if letters.startswith(n)), "")
        if not name:
            self.i = end
            return letters  # unknown command: keep its text, drop the "#"
        self.i = start + len(name)
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in ("left", "right"):
            return ""  # "#left(" -> "(": the delimiter follows as text
        opt = self._option()
        if name in PASS_THROUGH:
            if name == "kern" and self.s[self.i : self.i + 1] != "{":
                return ""
            return self._arg(depth)
        if name in ACCENTS:
            mark = ACCENTS[name]
            return "".join(ch + mark if not ch.isspace() else ch for ch in self._arg(depth))
        if name == "sqrt":
            body = self._arg(depth)
            root = {"3": "∛", "4": "∜"}.get(opt.strip(), "√")
            return root + body if len(body) <= 1 else f"{root}({body})"
        first = self._arg(depth)
        second = self._arg(depth)
        return f"{first} / {second}" if name == "splitline" else f"{first}/{second}"


def _script(body: str, *, sup: bool) -> str:
    """``body`` as unicode super/subscript characters when all exist, else ``^(body)``."""
    table = _SUP if sup else _SUB
    if body and all(ch in table for ch in body):
        return "".join(table[ch] for ch in body)
    mark = "^" if sup else "_"
    return f"{mark}{body}" if len(body) == 1 else f"{mark}({body})"
