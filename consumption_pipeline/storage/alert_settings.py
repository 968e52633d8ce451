"""The alert channels' settings (README "Alerts"), from CONSUMPTION_* variables like the others
(storage/settings.py): each parsed with a sentence saying what was expected, and a bad value stops
naming the variable before anything runs.

The webhook secret and the SMTP password are read from the environment where they are used and
are never written to a run's configuration, a log or the warehouse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from consumption_pipeline.storage.settings import _env, port

URL = r"https?://[^\s/?#]+[^\s]*"
EMAIL = r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+"


def webhook_url(text: str) -> str:
    """An http:// or https:// URL; empty means none."""
    if text and not re.fullmatch(URL, text):
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def email_address(text: str) -> str:
    """One email address such as alerts@example.com; empty means none."""
    if text and not re.fullmatch(EMAIL, text):
        raise ValueError(f"expected an email address such as alerts@example.com, got {text!r}")
    return text


def switch(text: str) -> bool:
    if text.lower() not in ("on", "off", "true", "false", "1", "0"):
        raise ValueError(f"expected on or off, got {text!r}")
    return text.lower() in ("on", "true", "1")


def seconds(low: float, high: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # also refuses NaN and infinity
            raise ValueError(f"expected a number of seconds from {low:g} to {high:g}, got {text!r}")
        return value

    return parse


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str = ""  # where webhook alerts go when their rule names no recipient
    webhook_secret: str = field(default="", repr=False)  # the HMAC key of the signature header
    timeout_seconds: float = 5.0  # of one HTTP request or SMTP conversation
    retry_seconds: float = 60.0  # attempt n of an alert waits retry × 2^(n−1) after attempt n − 1
    retry_cap_seconds: float = 3600.0
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_sender: str = ""
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> AlertSettings:
        settings = cls(
            webhook_url=_env("ALERT_WEBHOOK_URL", cls.webhook_url, webhook_url),
            webhook_secret=_env("ALERT_WEBHOOK_SECRET", cls.webhook_secret, str),
            timeout_seconds=_env("ALERT_TIMEOUT_SECONDS", cls.timeout_seconds, seconds(0.1, 60)),
            retry_seconds=_env("ALERT_RETRY_SECONDS", cls.retry_seconds, seconds(0, 86400)),
            retry_cap_seconds=_env(
                "ALERT_RETRY_CAP_SECONDS", cls.retry_cap_seconds, seconds(0, 86400)
            ),  # fmt: skip
            smtp_host=_env("SMTP_HOST", cls.smtp_host, str),
            smtp_port=_env("SMTP_PORT", cls.smtp_port, port),
            smtp_starttls=_env("SMTP_STARTTLS", cls.smtp_starttls, switch),
            smtp_sender=_env("SMTP_SENDER", cls.smtp_sender, email_address),
            smtp_username=_env("SMTP_USERNAME", cls.smtp_username, str),
            smtp_password=_env("SMTP_PASSWORD", cls.smtp_password, str),
        )
        if settings.smtp_host and not settings.smtp_sender:
            raise ValueError("CONSUMPTION_SMTP_SENDER: expected the sender's address when "
                             "CONSUMPTION_SMTP_HOST is set")  # fmt: skip
        return settings
