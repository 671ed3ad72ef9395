"""When and how long the SDK retries: only calls that are safe to repeat, honouring Retry-After."""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from auction.errors import RateLimited, ServiceUnavailable, TransportError

RETRYABLE = (RateLimited, ServiceUnavailable, TransportError)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` counts the first try; waits grow exponentially with jitter up to `max_wait`,
    or follow the server's Retry-After when it gives one (capped at `max_wait`)."""

    attempts: int = 4
    initial_wait: float = 0.1
    max_wait: float = 5.0

    def retrying(self) -> AsyncRetrying:
        jitter = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > 0:
                return float(min(retry_after, self.max_wait))
            return float(jitter(state))

        return AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            reraise=True,
        )


NO_RETRY = RetryPolicy(attempts=1)
