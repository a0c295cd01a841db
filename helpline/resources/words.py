"""What a service's own words say: needs and who it is for, from its name and description.

Many 211 records carry no taxonomy term, or say what they are only in their name ("Dade
Legal Aid") or description ("Provides 24-hour emergency shelter for runaway... youth"). The
rows of ``data/taxonomy-map.csv`` (and of an admin's ``--map`` file) of these kinds read them:

* ``name``: a phrase in the service's name gives what the row says (``need:legal``);
* ``text``: a phrase in its description does;
* ``says``: a phrase in either gives its need whatever the terms say (help with protection
  orders: plain, and rarely said in passing);
* ``unless``: a phrase that makes the clause it is in say nothing ("referrals to":
  "referrals to emergency shelter" is not a shelter; "linking with", "required"); the
  *never* words of terms (volunteering, donations) count here too;
* ``not``: a phrase that takes a need away, whatever else gives it ("not a shelter");
* ``who``: a phrase about whom a service serves, read (with the target-population ``words``
  rows) in its name and its description's first sentence only: "parents", "families" and
  "couples" are mothers and fathers, so a first sentence naming them limits no gender
  ("The Center for Women and Children ... offers ... classes to expectant parents").

Words are matched whole, case and accents aside, with "/" read as a space; a clause is the
text between . ; : ! ? * ( ) and line breaks (the export's literal "\\n" too); at any place
the longest phrase wins.

Precedence, so a keeper can predict what a record gets:

1. ``not`` phrases of the name or description take their needs away from all below;
2. the terms' needs (and HSDS attributes naming a need exactly);
3. ``name`` phrases add theirs, unless the terms give no need and one of them has a code
   row saying ``none`` (``Meaning.settled``: "Cancer Support Group" under Health Related
   Support Groups is not counselling); target populations (AIRS Y) are no such row;
4. ``text`` phrases only when the terms gave no need, no attribute named one and no
   code row said ``none`` (descriptions also list what an agency refers to, or once did);
   a need from the name does not stop them ("The Shelter for Abused Women" whose
   description lists "legal services"; "Legal Aid Service" with "Immigration Law");
5. ``says`` phrases always (only *never* words close their clause);
6. who it is for: the terms and eligibility rows; when they name no gender, the gender the
   target-population ``words`` rows find in the name and the description's first sentence
   (where a record says whom it serves: "Provides breast screenings ... to uninsured and
   under-insured women"); "boys and girls", "men and women", "parents" (``who`` rows)
   name both, so limit nothing.
   Ages likewise, when the terms and eligibility give none.
"""

from __future__ import annotations

import re
from collections.abc import Container

from helpline.flow.engine import normalize
from helpline.resources.taxonomy import NOTHING, Meaning, TaxonomyMap

# Between clauses: ". ; : ! ? * ( ) [ ] { }", line breaks and the literal "\\n" of some
# exports. A sentence ends at ". ! ?" followed by a space, or at a line break. Both are
# marked with a word of their own before the text is normalized once, as a whole.
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\\n|[\n\r]")
_CLAUSE_END = re.compile(r"[.;:!?*()\[\]{}]")
_ANY_END = re.compile(r"[.;:!?*()\[\]{}\\\n\r]")  # either of the above may be there
_WORD = re.compile(r"\w+")
_MARKS = ("__c__", "__s__")


def _words(text: str) -> list[str]:
    """``normalize(text)`` split into words, "/" a space: quicker for plain ASCII (most
    names and descriptions), which has nothing to fold but case."""
    if text.isascii() and "@" not in text:
        return _WORD.findall(text.lower())
    return normalize(text).replace("/", " ").split()


class Words:
    """A name or a description as the rules read it: its clauses in own form, and the
    phrases of every kind found in each (one pass over its words; at each place, the
    longest phrase of a kind wins, and a phrase's words are not read again for that kind)."""

    def __init__(self, rules: TaxonomyMap, text: str | None) -> None:
        marked = text or ""
        if _ANY_END.search(marked):
            marked = _CLAUSE_END.sub(" __c__ ", _SENTENCE_END.sub(" __s__ ", marked))
        self.parts: list[list[str]] = []  # the words of each clause
        self.first = 0  # how many clauses the first sentence has
        self.hits: dict[str, list[tuple[int, Meaning]]] = {}  # kind -> (clause, gives)
        found = _words(marked)
        if not found:
            return
        ended = False
        current: list[str] = []
        found.append("__c__")
        for word in found:
            if word in _MARKS:
                if current:
                    self.parts.append(current)
                    current = []
                    if not ended:
                        self.first = len(self.parts)
                ended = ended or (word == "__s__" and bool(self.parts))
            else:
                current.append(word)
        index = rules.phrases()
        for at, words in enumerate(self.parts):
            free: dict[str, int] = {}  # kind -> the first word its next phrase may start at
            last = len(words)
            for i, word in enumerate(words):
                for phrase, kind, gives in index.get(word, ()):
                    size = len(phrase)
                    if (size == 1 or (i + size <= last and words[i + 1] == phrase[1]
                                      and tuple(words[i:i + size]) == phrase)) and (
                            free.get(kind, 0) <= i):
                        self.hits.setdefault(kind, []).append((at, gives))
                        free[kind] = i + size

    @property
    def clauses(self) -> list[str]:
        return [" ".join(words) for words in self.parts]

    def closed(self, never_only: bool = False) -> set[int]:
        """The clauses an ``unless`` (or *never*) phrase closes (only *never*:
        ``never_only``)."""
        return {at for at, _ in self.hits.get("never" if never_only else "unless", ())}

    def gives(self, kind: str, closed: Container[int] = (), upto: int | None = None
              ) -> Meaning:
        """What the phrases of ``kind`` in the open clauses (of the first ``upto``) give."""
        out = NOTHING
        for at, given in self.hits.get(kind, ()):
            if at not in closed and (upto is None or at < upto):
                out |= given
        return out


def clauses(text: str | None) -> list[str]:
    """The clauses of a name or description, each in the form the rules match."""
    return Words(TaxonomyMap(), text).clauses


def first_sentence(text: str | None) -> list[str]:
    """The clauses of a description's first sentence."""
    found = Words(TaxonomyMap(), text)
    return found.clauses[:found.first]


def read(rules: TaxonomyMap, name: str | None, description: str | None, terms: Meaning,
         named: bool = False) -> Meaning:
    """What a service gets from its terms (``terms``: what its taxonomy terms and
    eligibility rows say) and its own words; ``named``: its HSDS attributes named a need."""
    own, text = Words(rules, name), Words(rules, description)
    shut = own.closed()
    from_name = own.gives("name", shut)
    removed = own.gives("not").needs | text.gives("not").needs
    needs = set(terms.needs - removed)
    from_terms = bool(needs)
    if needs or named or not terms.settled:
        needs |= from_name.needs
    if not from_terms and not named and not terms.settled:
        needs |= text.gives("text", text.closed()).needs
    for words in (own, text):
        needs |= words.gives("says", words.closed(never_only=True)).needs
    needs -= removed
    genders, min_ages, max_ages = terms.genders, terms.min_ages, terms.max_ages
    adults, minors = terms.serves_adults, terms.serves_minors
    if not genders or not (min_ages or max_ages):
        first = text.closed(never_only=True)
        said = (from_name | own.gives("population", shut) | own.gives("who", shut)
                | text.gives("population", first, upto=text.first)
                | text.gives("who", first, upto=text.first))
        if not genders:
            genders = said.genders
        if not (min_ages or max_ages):
            min_ages, max_ages = said.min_ages, said.max_ages
            adults = adults or said.serves_adults
            minors = minors or said.serves_minors
    return Meaning(frozenset(needs), genders, min_ages, max_ages, adults, terms.settled,
                   minors)
