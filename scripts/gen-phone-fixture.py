#!/usr/bin/env python3
"""Generates dialer-core/tests/fixtures/phone_agreement.tsv: numbers written as clients write them,
each with what libphonenumber (the Python port `phonenumbers`) makes of it. dialer-core's test
`phone_agreement` reads the file (no Python in CI) and checks that our parser agrees.

Pinned: phonenumbers==9.0.33, the libphonenumber release whose metadata the `phonenumber` crate
0.3.10+9.0.33 embeds, so a difference is one of algorithm, not of metadata age.

Rerun (from the repository root; the venv is not committed):
    python3 -m venv .venv-phone && .venv-phone/bin/pip install phonenumbers==9.0.33
    .venv-phone/bin/python scripts/gen-phone-fixture.py > dialer-core/tests/fixtures/phone_agreement.tsv

The output is the same on every run (fixed seed). Every input follows the contract's grammar
(digits, spaces, dashes, dots, parentheses, one leading `+`). Per region, national significant
numbers are drawn from the metadata's patterns per type (mostly valid), from the example numbers
with their last digits changed, as random digits of plausible lengths (mostly invalid), starting
with the country code (the crate's issue 68) or with the trunk prefix; each is then written in the
forms below with random punctuation. AR (a national prefix transform rule), IT (leading
zeros) and CA (a calling code shared with US) are there for the rules they exercise. Line: region, form, input, expected E.164 and its region
(or `-` when libphonenumber rejects: parse error or not a valid number).

Forms: `national` (as dialled in the country), `trunk` (national prefix first, where the region has
one), `plus` (`+` country code), `idd` (the region's own international prefix, e.g. 011 from US),
`foreign00` (a number of another listed region after `00`, valid only where 00 is an IDD),
`plusidd` (`+` then the region's IDD: libphonenumber reads it again without the `+`).
"""

import random
import re._parser as sre_parse
import re._constants as sre
import sys

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

PINNED = "9.0.33"
SEED = 12
REGIONS = ["IN", "US", "GB", "AE", "SG", "AU", "BR", "DE", "AR", "IT", "CA"]
PER_REGION = 700
FOREIGN_PER_REGION = 200
PLUS_IDD_PER_REGION = 150
TYPES = [
    ("mobile", 30),
    ("fixed_line", 30),
    ("toll_free", 4),
    ("premium_rate", 3),
    ("shared_cost", 2),
    ("voip", 3),
    ("personal_number", 2),
    ("pager", 2),
    ("uan", 2),
    ("voicemail", 2),
]


def sample_regex(pattern, rng):
    """A random string the (digits-only) metadata pattern matches."""

    def walk(items):
        out = []
        for op, av in items:
            if op is sre.LITERAL:
                out.append(chr(av))
            elif op is sre.IN:
                choices = []
                for kind, val in av:
                    if kind is sre.LITERAL:
                        choices.append(chr(val))
                    elif kind is sre.RANGE:
                        choices.extend(chr(c) for c in range(val[0], val[1] + 1))
                    elif kind is sre.CATEGORY:
                        choices.extend("0123456789")
                    else:
                        raise ValueError(f"unexpected class item {kind} in {pattern}")
                out.append(rng.choice(choices))
            elif op is sre.BRANCH:
                out.append(walk(rng.choice(av[1])))
            elif op is sre.SUBPATTERN:
                out.append(walk(av[3]))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                lo, hi, sub = av
                hi = lo + 3 if hi is sre.MAXREPEAT else hi
                out.extend(walk(sub) for _ in range(rng.randint(lo, hi)))
            else:
                raise ValueError(f"unexpected regex op {op} in {pattern}")
        return "".join(out)

    return walk(sre_parse.parse(pattern))


def has(desc):
    return desc is not None and desc.national_number_pattern not in (None, "", "NA")


def national_numbers(meta, rng, count):
    """National significant numbers of `meta`'s region, a mix of valid and invalid ones."""
    types = [(getattr(meta, t), w) for t, w in TYPES if has(getattr(meta, t))]
    lengths = list(meta.general_desc.possible_length)
    plausible = sorted(set(lengths) | {min(lengths) - 1, max(lengths) + 1})
    cc = str(meta.country_code)
    out = []
    while len(out) < count:
        kind = rng.random()
        desc = rng.choices([d for d, _ in types], [w for _, w in types])[0]
        if kind < 0.45:
            nsn = sample_regex(desc.national_number_pattern, rng)
        elif kind < 0.55 and desc.example_number:
            ex = desc.example_number
            k = rng.randint(1, min(4, len(ex) - 1))
            nsn = ex[:-k] + "".join(rng.choice("0123456789") for _ in range(k))
        elif kind < 0.78:
            n = rng.choice(plausible)
            first = rng.choice("0123456789" if rng.random() < 0.1 else "123456789")
            nsn = first + "".join(rng.choice("0123456789") for _ in range(max(n - 1, 0)))
        elif kind < 0.92:
            # starts with the country code: the case the crate misreads (its issue 68)
            valid = sample_regex(desc.national_number_pattern, rng)
            if rng.random() < 0.5 and valid.startswith(cc):
                nsn = valid
            else:
                n = rng.choice(lengths)
                nsn = cc + "".join(rng.choice("0123456789") for _ in range(max(n - len(cc), 1)))
        else:
            prefix = meta.national_prefix or "0"
            nsn = prefix + sample_regex(desc.national_number_pattern, rng)
        if nsn:
            out.append(nsn)
    return out


def punctuate(digits, rng, plus=False):
    """`digits` written with the contract's punctuation: groups split by spaces, dashes or dots,
    sometimes one group in parentheses."""
    if rng.random() < 0.3:
        return ("+" if plus else "") + digits
    groups, i = [], 0
    while i < len(digits):
        n = rng.randint(2, 5)
        groups.append(digits[i : i + n])
        i += n
    if rng.random() < 0.2 and len(groups) > 1:
        j = rng.randrange(len(groups) - 1)
        groups[j] = f"({groups[j]})"
    sep = rng.choice([" ", "-", ".", " ", "mixed"])
    text = groups[0]
    for g in groups[1:]:
        text += (rng.choice([" ", "-", ".", ""]) if sep == "mixed" else sep) + g
    return ("+" if plus else "") + text


def idd_of(meta, rng):
    """A prefix the region dials abroad with (its preferred one, else one its pattern matches)."""
    if meta.preferred_international_prefix:
        return meta.preferred_international_prefix
    idd = meta.international_prefix
    if idd and idd.isdigit():
        return idd
    return sample_regex(idd, rng)


def expected(text, region):
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return "-"
    if not phonenumbers.is_valid_number(number):
        return "-"
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return f"{e164}\t{phonenumbers.region_code_for_number(number) or '001'}"


def main():
    if phonenumbers.__version__ != PINNED:
        sys.exit(f"phonenumbers {phonenumbers.__version__} installed, {PINNED} pinned")
    out = sys.stdout
    out.write(f"# generated by scripts/gen-phone-fixture.py, phonenumbers {PINNED}, seed {SEED}\n")
    out.write("# region\tform\tinput\texpected E.164\texpected region (- : rejected)\n")
    metas = {r: PhoneMetadata.metadata_for_region(r) for r in REGIONS}
    for region in REGIONS:
        rng = random.Random(f"{SEED}-{region}")
        meta = metas[region]
        cc = str(meta.country_code)
        for nsn in national_numbers(meta, rng, PER_REGION):
            forms = [("national", punctuate(nsn, rng))]
            if meta.national_prefix:
                forms.append(("trunk", punctuate(meta.national_prefix + nsn, rng)))
            forms.append(("plus", punctuate(cc + nsn, rng, plus=True)))
            forms.append(("idd", punctuate(idd_of(meta, rng) + cc + nsn, rng)))
            for form, text in forms:
                out.write(f"{region}\t{form}\t{text}\t{expected(text, region)}\n")
        others = [r for r in REGIONS if r != region]
        for _ in range(FOREIGN_PER_REGION):
            other = metas[rng.choice(others)]
            nsn = national_numbers(other, rng, 1)[0]
            text = punctuate("00" + str(other.country_code) + nsn, rng)
            out.write(f"{region}\tforeign00\t{text}\t{expected(text, region)}\n")
        for nsn in national_numbers(meta, rng, PLUS_IDD_PER_REGION):
            text = punctuate(idd_of(meta, rng) + cc + nsn, rng, plus=True)
            out.write(f"{region}\tplusidd\t{text}\t{expected(text, region)}\n")


if __name__ == "__main__":
    main()
