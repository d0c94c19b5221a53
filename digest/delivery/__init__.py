"""Delivery: the ledger-driven send run, its contents cache, throttle, lease and transports."""

from digest.delivery.send import deliver, send_edition, send_message

__all__ = ["deliver", "send_edition", "send_message"]
