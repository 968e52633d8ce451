"""Money (docs/rules.md stage 5): decimal amounts rounded half-up to the currency's minor unit."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217's active currency codes and their minor units (the digits after the decimal point).
# Codes without a minor unit (gold, SDR, test codes) cannot be billed and are left out; ANG,
# replaced by XCG in 2025, stays for the periods billed in it before.
_THREE = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]
_NONE = ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"]  # fmt: skip
_TWO = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP
    LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR
    NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
    SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR
    ZMW ZWG
""".split()
MINOR_UNITS = {
    **dict.fromkeys(_TWO, 2), **dict.fromkeys(_THREE, 3), **dict.fromkeys(_NONE, 0),
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def minor_unit(currency: str) -> int:
    """The currency's minor unit; the catalog admits only the codes of `MINOR_UNITS`."""
    return MINOR_UNITS[currency]


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(_minor(currency), rounding=ROUND_HALF_UP)


@functools.cache
def _minor(currency: str) -> Decimal:
    """The currency's minor unit as an exponent, e.g. Decimal('0.01')."""
    return Decimal(1).scaleb(-minor_unit(currency))
