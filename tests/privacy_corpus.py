"""Free texts with planted personal data and near misses, written the way people write them.

Each text is marked up: ``[[TYPE|value]]`` is personal data that must come out as
``[TYPE]`` (the words around it are context that stays: "born on", "Thanks,");
``((text))`` is a near miss that must stay exactly as written. ``planted(text)`` is
what a customer would type, ``expected(text)`` what the curated layer must hold.
Shared by the redaction unit tests and the end-to-end tests that plant these texts in
every free-text source.
"""

from __future__ import annotations

import re
from collections import Counter

_PII = re.compile(r"\[\[([A-Z_]+)\|(.+?)\]\]", re.DOTALL)
_NEAR = re.compile(r"\(\((.+?)\)\)", re.DOTALL)

TEXTS = [
    "My name is [[NAME|Marguerite Okonkwo]] and my SSN is [[SSN|123-45-6789]]. "
    "((I waited 45 days for a decision)) and paid (($1,234.56 in fees)).",

    "Call me at [[PHONE|(202) 555-0143]] or email [[EMAIL|jane.doe@example.com]]; "
    "((my appointment was on 03/14/2026)).",

    "Card [[CARD|4111 1111 1111 1111]] was charged twice, but ((1234 5678 9012 3456)) is just "
    "the number on my letter and ((order 12345)) never arrived.",

    "I was born on [[DOB|03/14/1985]], ((applied 2026-01-15)) and got a decision ((on 2026-03-02)).",

    "A-number [[A_NUMBER|A123456789]], receipt [[RECEIPT|IOE0912345678]]; ((Form I-130 and I-485)) "
    "were filed together.",

    "Please send it to [[ADDRESS|1600 Pennsylvania Ave NW, Washington, DC 20500]]. "
    "((3 out of 5 stars)). Thanks, [[NAME|Bartholomew Quist]]",

    "My ITIN is [[ITIN|912-78-1234]] and my social is [[SSN|567891234]]; ((call center hours are 8-5)).",

    "Try [[PHONE|202-555-0178]], [[PHONE|202.555.0199]] or [[PHONE|202 555 0111]]. "
    "((Version 2.3.1)) of the app crashes.",

    "From abroad: [[PHONE|+1 202 555 0122]], [[PHONE|1-202-555-0133]], [[PHONE|+12025550144]]. "
    "((Room 101)) was closed ((on the 24th)).",

    "Text [[PHONE|2025550155]] or call me at [[PHONE|555-0166]] ((between 9:00 and 17:30)).",

    "Mastercard [[CARD|5500-0000-0000-0004]], Amex [[CARD|378282246310005]] and "
    "[[CARD|3782 822463 10005]]; ((4111 1111 1111 1112)) is an old one that never worked.",

    "Discover [[CARD|6011111111111117]] and Visa [[CARD|4012888888881881]]. ((10/10 would recommend)).",

    "DOB: [[DOB|1979-11-02]]. date of birth [[DOB|7/4/1990]]. ((Priority date March 3, 2026)).",

    "I was born [[DOB|March 3, 1962]] and my birthday is [[DOB|12 January 1958]] on the old form; "
    "D.O.B. [[DOB|02/29/1988]] for my son, born in [[DOB|May 1971]] says the other.",

    "Receipts [[RECEIPT|EAC2112345678]], [[RECEIPT|WAC-21-123-45678]], [[RECEIPT|MSC 2190123456]] and "
    "[[RECEIPT|lin1234567890]]. ((Section 280 of Circular A-11)) says they must answer.",

    "A numbers: [[A_NUMBER|A-123-456-789]], [[A_NUMBER|A 123 456 788]], [[A_NUMBER|A12345678]], "
    "[[A_NUMBER|a-012345678]]; ((step 3 of 4)) failed.",

    "A-number: [[A_NUMBER|987654321]]; alien registration number [[A_NUMBER|076-543-210]]. "
    "((ZIP 20500)) office.",

    "SSN [[SSN|234567890]], social security number is [[SSN|345-67-8901]], also [[SSN|123 45 6780]] "
    "and [[SSN|123.45.6781]]. ((waited 2 hours 15 minutes)).",

    "ITIN [[ITIN|987654321]] and [[ITIN|900 70 1234]]; ((reference 2026-0042)) in the letter.",

    "Emails: [[EMAIL|J.Smith+cx@agency-mail.gov]], [[EMAIL|maria_garcia99@mail.example.org]], "
    "[[EMAIL|SOFIA.ROSSI@EXAMPLE.COM]]. ((12 weeks later)) still nothing.",

    "Write to [[EMAIL|kwame.mensah at example dot com]] or [[EMAIL|li.nguyen[at]example[dot]org]] or "
    "contact: [[EMAIL|d.cohen@sub.example.co.uk]]. ((100 percent)) sure.",

    "I moved from [[ADDRESS|742 Evergreen Terrace]] to [[ADDRESS|4500 N. Oak Street, Apt 5B]], "
    "((in 2025 and 2026)).",

    "Mail goes to [[ADDRESS|12 Elm St., Springfield, IL 62701]] or [[ADDRESS|P.O. Box 1234]]; "
    "office at [[ADDRESS|221 Baker Street Suite 3]] and [[ADDRESS|35 W 42nd Street]]. ((A-1 service)).",

    "Ms. [[NAME|Ingrid Falkenrath]] and Dr. [[NAME|Theodora Vasquez-Lindqvist]] helped; Mr. "
    "[[NAME|O'Sullivan]] did not. ((Thanks, great service)) otherwise.",

    "Officer [[NAME|Pemberton]] was kind to my husband [[NAME|Radovan]]. I am [[NAME|Henrietta McAllister]]. "
    "((Thank you, Everyone!)) ((I am Very happy)).",

    "name: [[NAME|José Núñez]], ((page 2 of the I-765)).\nRegards,\n[[NAME|Esperanza Villalobos]]",

    "((Quick and easy, thank you.)) Card arrived fast. - [[NAME|Cornelius Abernathy]]",
]


def planted(text: str) -> str:
    """The text as a customer typed it."""
    return _NEAR.sub(r"\1", _PII.sub(r"\2", text))


def expected(text: str) -> str:
    """The text as the curated layer must hold it: placeholders in, near misses untouched."""
    return _NEAR.sub(r"\1", _PII.sub(r"[\1]", text))


def personal_data(texts: list[str] | None = None) -> list[tuple[str, str]]:
    """Every planted ``(type, value)``."""
    return [(m.group(1), m.group(2)) for text in (texts or TEXTS) for m in _PII.finditer(text)]


def near_misses(texts: list[str] | None = None) -> list[str]:
    return [m.group(1) for text in (texts or TEXTS) for m in _NEAR.finditer(text)]


def type_counts(text: str) -> Counter:
    """How many of each type the text holds."""
    return Counter(m.group(1) for m in _PII.finditer(text))
