import math

from tiedtransformer.analysis.numbers import fmt, number


def test_a_number_is_read_or_missing():
    assert number("0.5") == 0.5 and number(3) == 3.0 and number("") is None and number(None) is None
    assert math.isnan(number("nan"))


def test_a_number_is_shown_without_a_sign_on_zero():
    assert fmt(None) == "–" and fmt(0.12345) == "0.123" and fmt(-0.12345, 2) == "-0.12"
    assert fmt(-0.0000001) == "0.000" and fmt(-0.0) == "0.000" and fmt(-0.0004) == "0.000"
    assert fmt(-10.0, 1) == "-10.0" and fmt(float("nan")) == "nan"


def test_a_difference_is_shown_with_its_sign_unless_it_rounds_to_zero():
    from tiedtransformer.analysis.numbers import signed

    assert signed(0.123, 2) == "+0.12" and signed(-17.54, 1) == "-17.5" and signed(None, 1) == "–"
    assert signed(-0.001, 2) == "0.00" and signed(0.0, 1) == "0.0"
