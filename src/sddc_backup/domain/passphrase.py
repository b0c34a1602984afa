"""The passphrase policy for backup encryption.

The appliance documents no rule; ours defaults to at least 12 characters with an upper-case letter, a
lower-case letter, a digit and a special character, and every part of it is configurable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PassphrasePolicy:
    min_length: int = 12
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    require_special: bool = True

    def problems(self, passphrase: str) -> list[str]:
        """What the passphrase lacks, in words an operator can act on; empty when it complies.

        The passphrase itself never appears in the result.
        """
        missing: list[str] = []
        if len(passphrase) < self.min_length:
            missing.append(f"at least {self.min_length} characters")
        checks = (
            (self.require_upper, str.isupper, "an upper-case letter"),
            (self.require_lower, str.islower, "a lower-case letter"),
            (self.require_digit, str.isdigit, "a digit"),
            (self.require_special, _is_special, "a special character"),
        )
        for required, test, words in checks:
            if required and not any(test(c) for c in passphrase):
                missing.append(words)
        return missing

    def describe(self) -> str:
        parts = [f"at least {self.min_length} characters"]
        parts += [
            words
            for required, words in (
                (self.require_upper, "an upper-case letter"),
                (self.require_lower, "a lower-case letter"),
                (self.require_digit, "a digit"),
                (self.require_special, "a special character"),
            )
            if required
        ]
        return ", ".join(parts)


def _is_special(char: str) -> bool:
    return not char.isalnum() and not char.isspace()
