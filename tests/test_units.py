import pytest

from sdsl_sim.errors import InputError
from sdsl_sim.units import parse_count


@pytest.mark.parametrize("text, value", [("70e9", 70e9), ("70B", 70e9), ("277M", 277e6), ("1.5T", 1.5e12),
                                         ("1.5t", 1.5e12), ("8k", 8e3), ("7_000", 7e3), (" 13b ", 13e9)])
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["", "B", "70X", "abc", "-1B", "0", "inf", "nan"])
def test_parse_count_rejects(text):
    with pytest.raises(InputError):
        parse_count(text, "size")
