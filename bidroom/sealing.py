"""`bidroom bid seal`: the bid's form checked as the opening will read it, then sealed.

A sealed price is out of everyone's sight until the opening, the platform's included: the upload
carries ciphertext only. So the bidder's tool is the last place a mistyped price can be caught:
the plaintext must be a bid archive whose form (``bid.json``, bidroom.bidform) names this lot and
a price above 0.00, else nothing is sealed (``price_not_positive``, or the form's own code:
``form_not_zip``, ``form_missing``, ``form_other_lot``, ``form_bad_field``, ...).
``--no-form-check`` seals the file as it is (a test file, a benchmark): the opening then reads
whatever form it finds, and a bid without a readable price above 0.00 is listed, never ranked.
"""

from __future__ import annotations

import argparse

from bidroom import bidform
from bidroom.errors import BidroomError
from ca import commands


def check_form(args: argparse.Namespace) -> None:
    """Refuse to seal a plaintext whose form the opening could not price."""
    try:
        with args.bid.open("rb") as plaintext:
            bidform.sealable(plaintext, args.lot)
    except OSError as exc:
        raise BidroomError(
            f"cannot read {args.bid}: {exc.strerror}", code="file_unreadable"
        ) from exc


def bid_seal(args: argparse.Namespace) -> None:
    if not args.no_form_check:
        check_form(args)
    commands.bid_seal(args)
