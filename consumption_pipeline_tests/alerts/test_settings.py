"""The alert channels' settings (storage/alert_settings.py): read from CONSUMPTION_* variables,
each bad value refused with one sentence naming the variable."""

from __future__ import annotations

import pytest

from consumption_pipeline.storage.alert_settings import AlertSettings


def test_defaults_configure_no_channel(monkeypatch):
    for name in ["ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET", "SMTP_HOST", "SMTP_SENDER"]:
        monkeypatch.delenv(f"CONSUMPTION_{name}", raising=False)
    settings = AlertSettings.from_env()
    assert (settings.webhook_url, settings.smtp_host, settings.smtp_port) == ("", "", 587)
    assert settings.smtp_starttls and settings.timeout_seconds == 5.0


def test_the_settings_are_read_and_the_secrets_never_shown(monkeypatch):
    monkeypatch.setenv("CONSUMPTION_ALERT_WEBHOOK_URL", "https://hooks.example.com/alerts")
    monkeypatch.setenv("CONSUMPTION_ALERT_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("CONSUMPTION_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("CONSUMPTION_SMTP_PORT", "2525")
    monkeypatch.setenv("CONSUMPTION_SMTP_STARTTLS", "off")
    monkeypatch.setenv("CONSUMPTION_SMTP_SENDER", "alerts@example.com")
    monkeypatch.setenv("CONSUMPTION_SMTP_PASSWORD", "hunter2")
    settings = AlertSettings.from_env()
    assert settings.webhook_secret == "s3cret" and settings.smtp_port == 2525
    assert not settings.smtp_starttls
    assert "s3cret" not in repr(settings) and "hunter2" not in repr(settings)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CONSUMPTION_ALERT_WEBHOOK_URL", "hooks.example.com",
     "CONSUMPTION_ALERT_WEBHOOK_URL: expected an http:// or https:// URL, got 'hooks.example.com'"),
    ("CONSUMPTION_ALERT_TIMEOUT_SECONDS", "0",
     "CONSUMPTION_ALERT_TIMEOUT_SECONDS: expected a number of seconds from 0.1 to 60, got '0'"),
    ("CONSUMPTION_ALERT_RETRY_SECONDS", "-1",
     "CONSUMPTION_ALERT_RETRY_SECONDS: expected a number of seconds from 0 to 86400, got '-1'"),
    ("CONSUMPTION_SMTP_PORT", "70000",
     "CONSUMPTION_SMTP_PORT: expected a port number from 0 to 65535, got '70000'"),
    ("CONSUMPTION_SMTP_STARTTLS", "maybe", "CONSUMPTION_SMTP_STARTTLS: expected on or off, got 'maybe'"),
    ("CONSUMPTION_SMTP_SENDER", "alerts",
     "CONSUMPTION_SMTP_SENDER: expected an email address such as alerts@example.com, got 'alerts'"),
])  # fmt: skip
def test_a_bad_value_names_its_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        AlertSettings.from_env()
    assert str(refused.value) == message


def test_an_smtp_host_needs_a_sender(monkeypatch):
    monkeypatch.setenv("CONSUMPTION_SMTP_HOST", "smtp.example.com")
    monkeypatch.delenv("CONSUMPTION_SMTP_SENDER", raising=False)
    with pytest.raises(ValueError, match="^CONSUMPTION_SMTP_SENDER: expected the sender's address"):
        AlertSettings.from_env()
