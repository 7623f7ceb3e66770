"""A Lambda context for calling handlers in-process (the local stack, tests), as Powertools' examples do."""

import time
import uuid
from dataclasses import dataclass, field


@dataclass(eq=False)  # one context per invocation: compared (and hashed) by identity
class LocalLambdaContext:
    function_name: str
    timeout_seconds: int = 30
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def expire(self) -> None:
        """No time left from now on: a handler that watches its remaining time (the sync) saves and hands over."""
        self._deadline = time.monotonic()
