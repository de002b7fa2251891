"""Callback request: the caller leaves a number to be called back on.

Route ``callback/<code>``, entered when an extension or a queue did not
answer. The caller hears the intro and presses 1 (call me back on this
number) or 2 (type another number, ended by ``#`` or a pause); the number
is read back digit by digit, 1 confirms and 2 types it again. Every prompt
can be interrupted by the keys it offers.

The request is saved in Redis as soon as the caller has chosen a usable
number, before the read-back (one open request per customer, module and
target): a caller who hangs up after that keeps it; confirming only updates
it; a number typed again before confirming replaces it. While the caller is
still in the dialogue the request is held back from the dialler; confirming,
hanging up or running out of tries or time makes it due. A caller who
rejected the number (key 2) and then leaves without a new one leaves
nothing. The dialogue has its own time budget, ``dialogue_timeout``.

No usable number, too many wrong or missing keys before one, or Redis
failing: a short apology and the ``failure`` destination.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ... import chanvars
from ...audio import readback_files
from ...errors import AgiError, StoreUnavailable
from ...logsafe import sanitize
from ...prompt_catalog import prompt_name
from ...routing import Call, Outcome
from .config import CallbackRequestSettings
from .policy import MAX_TYPED_DIGITS, CallbackNumber, NumberPolicy
from .requests import CallbackStore, Registration

if TYPE_CHECKING:
    from ...calls.modules import ModuleEvents

MENU_KEYS = "12"
INVALID_CHOICE = "agi-server/common-invalid-choice"
# After the dialogue: settling the request and the last prompt (the route's
# time budget is dialogue_timeout plus this).
FINISH_TIME = 20.0


class OutOfTries(Exception):
    """The caller used up the module's ``tries``."""


class Tries:
    def __init__(self, allowed: int) -> None:
        self.left = allowed

    def spend(self) -> None:
        self.left -= 1
        if self.left <= 0:
            raise OutOfTries


class SavedRequest:
    """The request one caller's dialogue has saved so far."""

    def __init__(self, requests: CallbackStore, item: CallbackRequestSettings, call: Call) -> None:
        self.requests = requests
        self.item = item
        self.call = call
        self.registration: Registration | None = None
        self.number: CallbackNumber | None = None
        self.rejected = False  # the caller pressed 2 at the confirmation: wants another number

    async def save(self, number: CallbackNumber) -> None:
        """Saved as soon as chosen; a new number replaces this call's own
        unconfirmed request (a merged one belongs to an earlier call)."""
        self.rejected = False
        if self.registration is not None and number == self.number:
            return
        env, item, requests = self.call.env, self.item, self.requests
        module, target, caller = item.code, str(item.target), sanitize(env.callerid, 40)
        e164, hold = number.e164 or "", item.dialogue_timeout
        if self.registration is None or self.registration.merged:
            self.registration = await requests.register(
                module=module, target=target, number=number.national, dial=number.dial, e164=e164, caller=caller,
                call=env.uniqueid, hold=hold,
            )  # fmt: skip
        else:
            self.registration = await requests.renumber(
                self.registration.id, module=module, target=target, number=number.national, dial=number.dial,
                e164=e164, caller=caller, call=env.uniqueid, hold=hold,
            )  # fmt: skip
        self.number = number
        self.call.log.info(
            "callback %s: request %s for %s (%s)", self.item.code, self.registration.id, number.national,
            "merged" if self.registration.merged else "saved",
        )  # fmt: skip

    @property
    def kept(self) -> bool:
        """A number the caller chose (and did not reject) is saved."""
        return self.registration is not None and not self.rejected

    async def settle(self, how: str) -> None:
        """Due now: the caller confirmed or left (a failure leaves it due
        once its hold runs out: never lost)."""
        assert self.registration is not None
        try:
            await self.requests.settle(self.registration.id, self.call.env.uniqueid, how)
        except StoreUnavailable as exc:
            self.call.log.warning("callback %s: request %s not settled (%s); it is due after its hold",
                                  self.item.code, self.registration.id, exc)

    async def withdraw(self) -> None:
        """The caller rejected the number and left without a new one: this
        call's own request goes (an earlier call's request stays)."""
        if self.registration is None or self.registration.merged:
            return
        try:
            await self.requests.cancel(self.registration.id, "the caller rejected the number and left",
                                       only_pending=True)
        except StoreUnavailable as exc:
            self.call.log.warning("callback %s: rejected request %s not withdrawn (%s)",
                                  self.item.code, self.registration.id, exc)


class CallbackRequest:
    """The ``callback/<code>`` route: the caller flow of one callback module.
    ``requests`` is None when no Redis is configured: the caller is sent to
    ``failure`` with an apology."""

    def __init__(
        self, item: CallbackRequestSettings, policy: NumberPolicy, language: str, requests: CallbackStore | None,
        events: ModuleEvents | None = None, agents: Sequence[str] = (),
    ) -> None:
        self.item = item
        self.events = events  # callback.requested for the live panels
        self.agents = tuple(agents)  # the target's extensions: whose operators see the request
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
        saved = SavedRequest(requests, self.item, call)
        how = "confirmed"
        budget = asyncio.timeout(self.item.dialogue_timeout)
        try:
            async with budget:
                await self.choose_number(call, own, saved)
        except AgiError:  # hung up (or the call broke) in the middle of the dialogue
            await self.caller_left(saved, "hung up")
            raise
        except StoreUnavailable as exc:
            call.log.warning("callback %s: cannot store the request: %s", self.item.code, exc)
            return await self.fail(call, "store unavailable")
        except (OutOfTries, TimeoutError) as exc:
            if isinstance(exc, TimeoutError) and not budget.expired():
                raise
            why = "dialogue timeout" if isinstance(exc, TimeoutError) else "too many tries"
            if not saved.kept:
                await saved.withdraw()
                if why == "too many tries" and own is None and saved.registration is None:
                    why = "no usable number"
                return await self.fail(call, why)
            how = "no confirmation"
        assert saved.registration is not None and saved.number is not None
        await saved.settle(how)
        self.tell_requested(call, saved)
        registration = saved.registration
        await channel.stream_file(self.prompt("already-registered" if registration.merged else "registered"))
        reason = f"{'merged into' if registration.merged else 'registered'} request {registration.id}"
        return Outcome(
            self.item.next,
            reason if how == "confirmed" else f"{reason} (not confirmed)",
            {chanvars.CALLBACK_ID: registration.id, chanvars.CALLBACK_NUMBER: saved.number.national},
        )

    async def caller_left(self, saved: SavedRequest, how: str) -> None:
        if saved.kept:
            await saved.settle(how)
            self.tell_requested(saved.call, saved)
        else:
            await saved.withdraw()

    def tell_requested(self, call: Call, saved: SavedRequest) -> None:
        registration, number = saved.registration, saved.number
        if self.events is None or registration is None or number is None:
            return
        self.events.callback_requested(self.item.code, registration.id, number.national, call_id=call.env.uniqueid,
                                       merged=registration.merged, extensions=self.agents,
                                       queue=self.item.target_queue)  # fmt: skip

    async def fail(self, call: Call, reason: str) -> Outcome:
        await call.channel.stream_file(self.prompt("failed"))
        return Outcome(self.item.failure, reason)

    # --- the dialogue ------------------------------------------------------

    async def choose_number(self, call: Call, own: CallbackNumber | None, saved: SavedRequest) -> None:
        """Ask until the caller confirms a number, saving each usable number
        as soon as it is chosen; OutOfTries when they have used up ``tries``."""
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
            await saved.save(candidate)
            sounds = [self.prompt("you-entered"), *readback_files(candidate.national, self.language)]
            key = await self.ask(call, [*sounds, self.prompt("confirm")])
            if key == "1":
                return
            if key == "2":
                candidate = None
                saved.rejected = True
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
