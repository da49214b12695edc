"""Warnings about settings that are unsafe in production, logged once at start-up."""

from __future__ import annotations

import logging

from segmentd.config import DEFAULT_PAGE_TOKEN_SECRET, Settings

log = logging.getLogger("segmentd.server")

DEFAULT_SECRET_WARNING = (
    "the page-token secret is the built-in default, so anyone can forge member page tokens: "
    "set SEGMENTD_PAGE_TOKEN_SECRET (--page-token-secret) to a random value, the same on every replica"
)


def warn_about_unsafe_settings(settings: Settings) -> None:
    """Log a warning for each setting that must be changed before production."""
    if settings.page_token_secret == DEFAULT_PAGE_TOKEN_SECRET:
        log.warning(DEFAULT_SECRET_WARNING)
