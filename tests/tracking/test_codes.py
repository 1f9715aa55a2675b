"""One parser for every spelling a person produces."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tracking.codes import FORMAT_HELP, InvalidCode, TrackingCode, parse_tracking_code
from app.tracking.models import CodeForm

ULID = "01H0WARY2WHGGRF3K72D299T3T"


@pytest.mark.parametrize(
    "spelling",
    [
        "01H0WARY2W",
        "01H0W-ARY2W",
        "01h0-wary-2w",
        "01H0 WARY 2W",
        "01H0W.ARY2W",
        "01H0W\u2013ARY2W",
        "01H0W\u2014ARY2W",
        "01H0W\u2212ARY2W",
        " 01h0w-ary2w ",
        "0IH0WARY2W",
        "01H0WARY2w",
        "O1H0WARY2W",
        "0LH0WARY2W",
        "01H0WARY2W\n",
    ],
)
def test_spellings_of_a_tracking_id(spelling: str) -> None:
    code = parse_tracking_code(spelling)

    assert code.value == "01H0WARY2W"
    assert code.form == CodeForm.SHORT


@pytest.mark.parametrize(
    "spelling",
    [ULID, ULID.lower(), "01H0W-ARY2W-HGGRF-3K72D-299T3T", "01H0 WARY 2WHG GRF3 K72D 299T 3T"],
)
def test_spellings_of_a_full_ulid(spelling: str) -> None:
    code = parse_tracking_code(spelling)

    assert code == parse_tracking_code(ULID)
    assert code.form == CodeForm.FULL


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("01H0WARYUW", "'U'"),
        ("01H0WARY2", "9 characters"),
        ("01H0WARY2WX", "11 characters"),
        ("", "No code was given"),
        (" - \u200b", "No code was given"),
        ("01H0W/ARY2W", "'/'"),
        ("81H0WARY2W", "cannot start"),
        ("x" * 500, "too long"),
    ],
)
def test_what_cannot_be_a_code_is_explained(spelling: str, reason: str) -> None:
    with pytest.raises(InvalidCode) as error:
        parse_tracking_code(spelling)

    assert reason in error.value.detail
    assert "10-character tracking ID" in error.value.detail


separators = st.sampled_from([" ", "-", ".", "\u2010", "\u2013", "\u2014", "\u2212", "\t"])
CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def canonical_codes(length: int) -> st.SearchStrategy[str]:
    rest = st.text(alphabet=CROCKFORD_ALPHABET, min_size=length - 1, max_size=length - 1)
    return st.builds(str.__add__, st.sampled_from("01234567"), rest)


def spelled(data: st.DataObject, canonical: str) -> str:
    """``canonical`` as a person might write it: any case, Crockford's look-alikes, and
    separators of any kind between (and around) the characters."""
    out = data.draw(st.one_of(st.just(""), separators))
    for char in canonical:
        char = {
            "1": data.draw(st.sampled_from(["1", "I", "i", "L", "l"])),
            "0": data.draw(st.sampled_from(["0", "O", "o"])),
        }.get(char, data.draw(st.sampled_from([char, char.lower()])))
        out += char + data.draw(st.one_of(st.just(""), separators))
    return out


@settings(max_examples=50)
@given(canonical=canonical_codes(26), data=st.data())
def test_every_spelling_of_a_valid_ulid_parses_to_that_ulid(
    canonical: str, data: st.DataObject
) -> None:
    code = parse_tracking_code(spelled(data, canonical))
    its_tracking_id = parse_tracking_code(spelled(data, canonical[:10]))

    assert code == TrackingCode(canonical, CodeForm.FULL)
    assert its_tracking_id == TrackingCode(canonical[:10], CodeForm.SHORT)


@settings(max_examples=50)
@given(canonical=canonical_codes(10), data=st.data())
def test_every_spelling_of_a_valid_tracking_id_parses_to_that_id(
    canonical: str, data: st.DataObject
) -> None:
    code = parse_tracking_code(spelled(data, canonical))

    assert code == TrackingCode(canonical, CodeForm.SHORT)


# Near misses as well as noise: code characters, look-alikes, separators and strangers.
near_codes = st.text(
    alphabet=st.one_of(
        st.sampled_from(CROCKFORD_ALPHABET + "ILOUilou-. \u2013\u2212/_*#"),
        st.characters(),
    ),
    max_size=120,
)


@given(st.one_of(st.text(max_size=120), near_codes))
def test_anything_else_raises_only_the_documented_error(raw: str) -> None:
    refusal: InvalidCode | None
    try:
        code = parse_tracking_code(raw)
    except InvalidCode as error:
        refusal = error
    else:
        refusal = None
    if refusal is not None:
        assert refusal.status_code == 400
        assert FORMAT_HELP in refusal.detail  # every refusal explains the format
        return
    # Whatever is accepted is canonical, and parsing it again changes nothing.
    assert len(code.value) == (26 if code.form == CodeForm.FULL else 10)
    assert set(code.value) <= set(CROCKFORD_ALPHABET) and code.value[0] <= "7"
    assert parse_tracking_code(code.value) == code
