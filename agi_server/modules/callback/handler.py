"""Callback request: the caller leaves a number to be called back on.

Route ``callback/<code>``, entered when an extension or a queue did not
answer. The caller hears the intro and presses 1 (call me back on this
number) or 2 (type another number, ended by ``#`` or a pause); the number
is read back digit by digit, 1 confirms and 2 types it again. The request is
stored in Redis (one open request per customer, module and target) and the
call goes on to ``next``. Every prompt can be interrupted by the keys it
offers. A caller with no usable number, too many wrong or missing keys, or
Redis failing: a short apology and the ``failure`` destination.
"""

from __future__ import annotations

from ... import chanvars
from ...audio import readback_files
from ...errors import StoreUnavailable
from ...logsafe import sanitize
from ...prompt_catalog import prompt_name
from ...routing import Call, Outcome
from .config import CallbackRequestSettings
from .policy import MAX_TYPED_DIGITS, CallbackNumber, NumberPolicy
from .requests import CallbackStore

MENU_KEYS = "12"
INVALID_CHOICE = "agi-server/common-invalid-choice"


class OutOfTries(Exception):
    """The caller used up the module's ``tries``."""


class Tries:
    def __init__(self, allowed: int) -> None:
        self.left = allowed

    def spend(self) -> None:
        self.left -= 1
        if self.left <= 0:
            raise OutOfTries


class CallbackRequest:
    """The ``callback/<code>`` route: the caller flow of one callback module.
    ``requests`` is None when no Redis is configured: the caller is sent to
    ``failure`` with an apology."""

    def __init__(
        self, item: CallbackRequestSettings, policy: NumberPolicy, language: str, requests: CallbackStore | None
    ) -> None:
        self.item = item
        self.policy = policy
        self.language = language
        self.requests = requests
        self.timeout_ms = int(item.input_timeout * 1000)

    def prompt(self, key: str) -> str:
        return prompt_name("callback", self.item.code, key, self.item.prompts)

    async def __call__(self, call: Call) -> Outcome:
        channel = call.channel
        await channel.answer()
        requests = self.requests
        if requests is None:
            return await self.fail(call, "no store configured")
        own = self.policy.accept(call.env.callerid)
        try:
            number = await self.choose_number(call, own)
        except OutOfTries:
            return await self.fail(call, "no usable number" if own is None else "too many tries")
        try:
            registration = await requests.register(
                module=self.item.code,
                target=str(self.item.target),
                number=number.national,
                dial=number.dial,
                e164=number.e164 or "",
                caller=sanitize(call.env.callerid, 40),
                call=call.env.uniqueid,
            )
        except StoreUnavailable as exc:
            call.log.warning("callback %s: cannot store the request: %s", self.item.code, exc)
            return await self.fail(call, "store unavailable")
        call.log.info(
            "callback %s: request %s for %s (%s)",
            self.item.code, registration.id, number.national, "merged" if registration.merged else "new",
        )  # fmt: skip
        await channel.stream_file(self.prompt("already-registered" if registration.merged else "registered"))
        return Outcome(
            self.item.next,
            f"{'merged into' if registration.merged else 'registered'} request {registration.id}",
            {chanvars.CALLBACK_ID: registration.id, chanvars.CALLBACK_NUMBER: number.national},
        )

    async def fail(self, call: Call, reason: str) -> Outcome:
        await call.channel.stream_file(self.prompt("failed"))
        return Outcome(self.item.failure, reason)

    # --- the dialogue ------------------------------------------------------

    async def choose_number(self, call: Call, own: CallbackNumber | None) -> CallbackNumber:
        """Ask until the caller confirms a number; OutOfTries when they
        have used up ``tries``."""
        tries = Tries(self.item.tries)
        candidate = None
        while True:
            key = await self.ask(call, [self.prompt("intro")])
            if key == "1" and own is not None:
                candidate = own
                break
            if key in ("1", "2"):  # 2, or 1 from a caller whose own number is unusable
                break
            if key is not None:
                await call.channel.stream_file(INVALID_CHOICE)
            tries.spend()
        while True:
            if candidate is None:
                candidate = await self.type_number(call, tries)
            sounds = [self.prompt("you-entered"), *readback_files(candidate.national, self.language)]
            key = await self.ask(call, [*sounds, self.prompt("confirm")])
            if key == "1":
                return candidate
            if key == "2":
                candidate = None
            elif key is not None:
                await call.channel.stream_file(INVALID_CHOICE)
            tries.spend()

    async def type_number(self, call: Call, tries: Tries) -> CallbackNumber:
        while True:
            digits = await call.channel.get_data(self.prompt("enter-number"), self.timeout_ms, MAX_TYPED_DIGITS)
            number = self.policy.accept(digits) if digits else None
            if number is not None:
                return number
            if digits:
                call.log.info("callback %s: refused number %s", self.item.code, sanitize(digits, 40))
                await call.channel.stream_file(self.prompt("invalid-number"))
            tries.spend()

    async def ask(self, call: Call, sounds: list[str]) -> str | None:
        """Play ``sounds`` (each interruptible by the menu keys), then wait
        for a key; the key pressed, or None."""
        for sound in sounds:
            key = await call.channel.stream_file(sound, MENU_KEYS)
            if key is not None:
                return key
        return await call.channel.wait_for_digit(self.timeout_ms)
