"""Money for people: minor units shown in the currency's own decimals (ISO 4217 exponent)."""

from __future__ import annotations

# Currencies whose minor unit is not 1/100 (ISO 4217); everything else has two decimals.
_EXPONENT = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip

# Symbols only where one is unambiguous; any other currency keeps its code.
_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def format_money(minor_units: int, currency: str, *, symbol: bool = False) -> str:
    """`123456, "USD"` -> `1,234.56 USD` (with `symbol`: `$1,234.56`); exact, no floats.

    With `symbol`, a currency without a well-known symbol is still shown with its code.
    """
    exponent = _EXPONENT.get(currency, 2)
    sign = "-" if minor_units < 0 else ""
    whole, fraction = divmod(abs(minor_units), 10**exponent)
    text = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    mark = _SYMBOL.get(currency) if symbol else None
    return f"{sign}{mark}{text}" if mark else f"{sign}{text} {currency}"
