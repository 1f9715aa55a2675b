"""One parser for every spelling a person produces."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.tracking.codes import InvalidCode, parse_tracking_code
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
        ("", "0 characters"),
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
crockford = st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=25, max_size=25)


@given(first=st.sampled_from("01234567"), rest=crockford, data=st.data())
def test_every_spelling_of_a_valid_code_parses_to_the_same_value(
    first: str, rest: str, data
) -> None:
    canonical = first + rest
    spelled = ""
    for char in canonical:
        char = data.draw(st.sampled_from([char, char.lower()]))
        char = {
            "1": data.draw(st.sampled_from(["1", "I", "l", "L", "i"])),
            "0": data.draw(st.sampled_from(["0", "O", "o"])),
        }.get(char, char)
        spelled += char + data.draw(st.one_of(st.just(""), separators))

    assert parse_tracking_code(spelled).value == canonical
    assert parse_tracking_code(canonical[:10]).form == CodeForm.SHORT


@given(st.text(max_size=120))
def test_anything_else_raises_only_the_documented_error(raw: str) -> None:
    try:
        code = parse_tracking_code(raw)
    except InvalidCode:
        return
    assert len(code.value) in (10, 26)
